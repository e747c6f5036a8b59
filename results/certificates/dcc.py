"""The Digital Calibration Certificate (DCC): the certificate data as PTB DCC 3.1.2 XML with D-SI 2.1.0 values.

The DCC is the machine-readable twin of the PDF certificate, so it is written from the same certificate data
dict (see `results/certificates/content.py`) and nothing else. Numbers are written with `repr()` — the shortest
text that reads back as the same float — so a reader (and the verifier) gets exactly the stored numbers, not
the rounded print texts. Element order follows the xs:sequence order of `schemas/dcc-3.1.2.xsd`; whether the
result is valid is checked by `dcc_schema.validate_dcc`.

Per calibration point the DCC holds one `dcc:result` whose data are `dcc:quantity` elements (setpoint,
reference value, indication, error of indication), each a `si:real`; the error carries the expanded
uncertainty (`si:expandedUnc`) and, when a decision was made, the conformity statement in its
`dcc:measurementMetaData`.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from decimal import Decimal
from importlib import metadata
from typing import Any

DCC_NS = "https://ptb.de/dcc"
SI_NS = "https://ptb.de/si"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_VERSION = "3.1.2"
SCHEMA_LOCATION = f"{DCC_NS} https://ptb.de/dcc/v{SCHEMA_VERSION}/dcc.xsd"
SOFTWARE_NAME = "daq-calibration-runner"

ET.register_namespace("dcc", DCC_NS)
ET.register_namespace("si", SI_NS)
ET.register_namespace("xsi", XSI_NS)

# Point keys of the certificate data -> (refType, English quantity name). These refTypes are from the DCC
# "basic_" vocabulary, so a generic DCC reader knows which value is which without reading the names; refTypes
# this project had to coin (no basic_ equivalent known to it) carry the prefix "daq_".
POINT_QUANTITIES: dict[str, tuple[str, str]] = {
    "nominal": ("basic_nominalValue", "Setpoint"),
    "reference": ("basic_referenceValue", "Reference value"),
    "indication": ("basic_measuredValue", "Indication"),
    "error": ("basic_measurementError", "Error of indication"),
}
REF_TYPE_KEYS: dict[str, str] = {ref_type: key for key, (ref_type, _name) in POINT_QUANTITIES.items()}
AS_FOUND_REF_TYPE = "daq_asFound"
AS_LEFT_REF_TYPE = "daq_asLeft"

# Decision statements of results/decision.py -> dcc:conformity values of the schema.
CONFORMITY: dict[str, str] = {
    "pass": "pass",
    "fail": "fail",
    "conditional pass": "conditionalPass",
    "conditional fail": "conditionalFail",
}

_PREFIXES = {"p": r"\pico", "n": r"\nano", "µ": r"\micro", "μ": r"\micro", "u": r"\micro", "m": r"\milli",
             "k": r"\kilo", "M": r"\mega", "G": r"\giga"}
_PREFIXABLE = {"V": r"\volt", "A": r"\ampere", "Ω": r"\ohm", "ohm": r"\ohm", "Hz": r"\hertz", "Pa": r"\pascal",
               "bar": r"\bar", "g": r"\gram", "W": r"\watt", "F": r"\farad", "H": r"\henry", "s": r"\second"}
_EXACT_UNITS = {"°C": r"\degreecelsius", "degC": r"\degreecelsius", "℃": r"\degreecelsius", "K": r"\kelvin",
                "kg": r"\kilogram", "%": r"\percent", "%RH": r"\percent", "% RH": r"\percent", "1": r"\one"}

_DECIMAL = re.compile(r"[-+]?((\d*\.\d+)|(\d+\.\d*)|(\d+\.?))([Ee][-+]?\d+)?")
_K_VALUE = re.compile(r"\+?(([1-9]\d*\.\d*)|([1-9]\d*))")
_PROBABILITY = re.compile(r"\+?((0(\.\d*)?)|(1(\.0*)?))")


def dsi_unit(unit: str) -> str:
    """The D-SI unit text for a unit as the procedures write it (V, mV, Ω, °C, kPa, g, %RH ...).

    A small explicit mapping rather than a unit parser: a unit the mapping does not know must stop the
    certificate with a clear message instead of landing in the DCC as an unreadable string.
    """
    text = unit.strip()
    if text in _EXACT_UNITS:
        return _EXACT_UNITS[text]
    if text in _PREFIXABLE:
        return _PREFIXABLE[text]
    if len(text) > 1 and text[0] in _PREFIXES and text[1:] in _PREFIXABLE:
        return _PREFIXES[text[0]] + _PREFIXABLE[text[1:]]
    known = sorted(set(_EXACT_UNITS) | set(_PREFIXABLE))
    raise ValueError(f"unit {unit!r} has no D-SI mapping for the DCC; known units: {', '.join(known)} "
                     f"(the electrical, pressure and mass units also with a prefix p n µ m k M G)")


def _number(value: Any, what: str) -> str:
    """A float as the shortest text that reads back to the same float (repr), in the D-SI decimal syntax."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number for the DCC, got {value!r}")
    text = repr(number)
    if not _DECIMAL.fullmatch(text):  # pragma: no cover - repr of a finite float always matches
        raise ValueError(f"{what}: {text!r} is not a D-SI decimal")
    return text


def _plain_number(value: Any, what: str, pattern: re.Pattern[str], rule: str) -> str:
    """k and coverage probability: D-SI forbids an exponent there, so write the exact decimal of the repr."""
    text = _number(value, what)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if not pattern.fullmatch(text):
        raise ValueError(f"{what} must be {rule} for the DCC, got {value!r}")
    return text


def _el(parent: ET.Element, tag: str, text: str | None = None, ns: str = DCC_NS, **attrs: str) -> ET.Element:
    """A child element in the dcc (or si) namespace, with text and attributes in a fixed order."""
    child = ET.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        child.text = text
    return child


def _text(parent: ET.Element, tag: str, text: str, lang: str) -> ET.Element:
    """A dcc:textType (or richContentType with only content): a localized text in the certificate's language."""
    element = _el(parent, tag)
    _el(element, "content", text, lang=lang)
    return element


def _location(parent: ET.Element, address: str | None, country: str | None = None,
              further: tuple[str, ...] = ()) -> None:
    """A dcc:location from a free-text address: the data dict has no street/city split, so it is `further`."""
    location = _el(parent, "location")
    for text in (address, *further):
        if text:
            _el(_el(location, "further"), "content", text)
    if country:
        _el(location, "countryCode", country)
    if len(location) == 0:
        _el(_el(location, "further"), "content", "")


def _identification(parent: ET.Element, issuer: str, value: str, name: str, lang: str) -> None:
    identification = _el(parent, "identification")
    _el(identification, "issuer", issuer)
    _el(identification, "value", value)
    _text(identification, "name", name, lang)


def _software_version() -> str:
    """The installed project version; a source checkout without metadata still gets a DCC."""
    try:
        return metadata.version(SOFTWARE_NAME)
    except metadata.PackageNotFoundError:
        return "unknown"


def _dcc_software(parent: ET.Element, lang: str) -> None:
    software = _el(_el(parent, "dccSoftware"), "software")
    _text(software, "name", SOFTWARE_NAME, lang)
    _el(software, "release", _software_version())
    _el(software, "type", "application")


def _previous_report(parent: ET.Element, data: Mapping[str, Any], lang: str) -> None:
    """dcc:previousReport for an amended certificate.

    The schema wants a hash of the replaced report; the certificate data carries one only as the optional
    `replaces_sha256`, otherwise the procedure says so and the value stays empty.
    """
    report = _el(parent, "previousReport")
    _text(report, "referral", f"Calibration certificate {data['replaces']} (replaced by this certificate)", lang)
    _el(report, "referralID", str(data["replaces"]))
    digest = data.get("replaces_sha256")
    _el(report, "procedure", "SHA-256" if digest else "none")
    _el(report, "value", str(digest or ""))


def _core_data(parent: ET.Element, data: Mapping[str, Any], lang: str) -> None:
    core = _el(parent, "coreData")
    _el(core, "countryCodeISO3166_1", str(data["laboratory"]["country"]))
    _el(core, "usedLangCodeISO639_1", lang)
    _el(core, "mandatoryLangCodeISO639_1", lang)
    _el(core, "uniqueIdentifier", str(data["number"]))
    identifications = _el(core, "identifications")
    order = data.get("order") or {}
    for key, name in (("order_number", "Order number"), ("request", "Request number")):
        if order.get(key):
            _identification(identifications, "calibrationLaboratory", str(order[key]), name, lang)
    if data.get("verification_code"):
        _identification(identifications, "calibrationLaboratory", str(data["verification_code"]),
                        "Verification code", lang)
    dates = data["dates"]
    if dates.get("received"):
        _el(core, "receiptDate", str(dates["received"]))
    _el(core, "beginPerformanceDate", str(dates["calibration_begin"]))
    _el(core, "endPerformanceDate", str(dates["calibration_end"]))
    kind = (data.get("place") or {}).get("kind")
    _el(core, "performanceLocation", "customer" if kind == "customer" else "laboratory")
    if data.get("replaces"):
        _previous_report(core, data, lang)


def _items(parent: ET.Element, item: Mapping[str, Any], lang: str) -> None:
    element = _el(_el(parent, "items"), "item")
    _text(element, "name", str(item.get("description") or item.get("parameter") or "Item"), lang)
    notes = [f"{label}: {item[key]}" for key, label in (("parameter", "Parameter"), ("condition", "Condition"))
             if item.get(key)]
    if notes:
        _text(element, "description", "; ".join(notes), lang)
    _text(_el(element, "manufacturer"), "name", str(item.get("make") or "unknown"), lang)
    if item.get("model"):
        _el(element, "model", str(item["model"]))
    identifications = _el(element, "identifications")
    serial = item.get("serial")
    if serial:
        _identification(identifications, "manufacturer", str(serial), "Serial number", lang)
    own = item.get("identification")
    if (own and own != serial) or not serial:  # the schema needs one identification; a copy of the serial is noise
        _identification(identifications, "customer", str(own or ""), "Identification", lang)


def _contact(parent: ET.Element, tag: str, party: Mapping[str, Any], lang: str, country: str | None = None) -> None:
    """A dcc:contactType: the schema requires an e-mail element, which stays empty when unknown."""
    contact = _el(parent, tag)
    _text(contact, "name", str(party.get("name") or ""), lang)
    _el(contact, "eMail", str(party.get("email") or ""))
    attention = (f"Contact: {party['contact']}",) if party.get("contact") else ()
    _location(contact, party.get("address"), country, attention)


def _resp_persons(parent: ET.Element, authorisation: Mapping[str, Any], lang: str) -> None:
    person = _el(_el(parent, "respPersons"), "respPerson")
    _text(_el(person, "person"), "name", str(authorisation.get("name") or ""), lang)
    if authorisation.get("signed_at"):
        _text(person, "description", f"Authorised {authorisation['signed_at']}", lang)
    if authorisation.get("role"):
        _el(person, "role", str(authorisation["role"]))
    _el(person, "mainSigner", "true")


def _statement(parent: ET.Element, declaration: str, lang: str, ref_type: str, *, convention: str | None = None,
               traceable: bool | None = None, references: tuple[str, ...] = ()) -> None:
    statement = _el(parent, "statement", refType=ref_type)
    if convention:
        _el(statement, "convention", convention)
    if traceable is not None:
        _el(statement, "traceable", "true" if traceable else "false")
    for reference in references:
        _el(statement, "reference", reference)
    _text(statement, "declaration", declaration, lang)


def _traceability_text(entry: Mapping[str, Any]) -> str:
    """One sentence per reference standard: what it is, whose certificate, when calibrated and when due."""
    parts = [str(entry.get("description") or entry.get("role") or "Reference standard")]
    if entry.get("serial"):
        parts.append(f"serial {entry['serial']}")
    if entry.get("certificate"):
        issuer = f" issued by {entry['issued_by']}" if entry.get("issued_by") else ""
        parts.append(f"certificate {entry['certificate']}{issuer}")
    if entry.get("calibrated"):
        parts.append(f"calibrated {entry['calibrated']}")
    if entry.get("due"):
        parts.append(f"due {entry['due']}")
    return ", ".join(parts)


def _statements(parent: ET.Element, data: Mapping[str, Any], lang: str) -> None:
    statements = _el(parent, "statements")
    if data.get("statement"):
        _statement(statements, str(data["statement"]), lang, "daq_resultsRelateToItem")
    rule = data.get("decision_rule") or {}
    if rule.get("text"):
        references = (str(rule["specification"]),) if rule.get("specification") else ()
        _statement(statements, str(rule["text"]), lang, "basic_conformity", convention=rule.get("name"),
                   references=references)
    if data.get("uncertainty_statement"):
        _statement(statements, str(data["uncertainty_statement"]), lang, "daq_uncertainty")
    traceability = data.get("traceability") or []
    if traceability:
        text = "Traceability to the SI through: " + "; ".join(_traceability_text(e) for e in traceability) + "."
        _statement(statements, text, lang, "daq_traceability", traceable=True)
    if (data.get("laboratory") or {}).get("accreditation"):
        _statement(statements, str(data["laboratory"]["accreditation"]), lang, "daq_accreditation")
    if (data.get("place") or {}).get("text"):
        _statement(statements, str(data["place"]["text"]), lang, "daq_placeOfCalibration")
    if (data.get("adjustment") or {}).get("text"):
        _statement(statements, str(data["adjustment"]["text"]), lang, "daq_adjustment")
    if data.get("replaces"):
        reason = str(data.get("amendment_reason") or "")
        text = f"This certificate replaces certificate {data['replaces']}." + (f" Reason: {reason}" if reason else "")
        _statement(statements, text, lang, "daq_amendment", references=(str(data["replaces"]),))


def _administrative_data(root: ET.Element, data: Mapping[str, Any], lang: str) -> None:
    admin = _el(root, "administrativeData")
    _dcc_software(admin, lang)
    _core_data(admin, data, lang)
    _items(admin, data["item"], lang)
    laboratory = data["laboratory"]
    _contact(_el(admin, "calibrationLaboratory"), "contact", laboratory, lang, str(laboratory.get("country") or ""))
    _resp_persons(admin, data.get("authorisation") or {}, lang)
    _contact(admin, "customer", data.get("customer") or {}, lang)
    _statements(admin, data, lang)


def _used_methods(parent: ET.Element, method: Mapping[str, Any], lang: str) -> None:
    """The procedure by name; its file and content hash as references, so the exact procedure can be found."""
    used = _el(_el(parent, "usedMethods"), "usedMethod")
    _text(used, "name", str(method.get("procedure") or "Calibration procedure"), lang)
    if method.get("description"):
        _text(used, "description", str(method["description"]), lang)
    if method.get("reference"):
        _el(used, "reference", str(method["reference"]))
    if method.get("version"):
        _el(used, "reference", f"version {method['version']}")


def _measuring_equipments(parent: ET.Element, traceability: list[Mapping[str, Any]], lang: str) -> None:
    if not traceability:
        return
    equipments = _el(parent, "measuringEquipments")
    for entry in traceability:
        equipment = _el(equipments, "measuringEquipment", refType=_ref_type(entry.get("role")))
        _text(equipment, "name", str(entry.get("description") or entry.get("role") or "Reference standard"), lang)
        _text(equipment, "description", _traceability_text(entry), lang)
        identifications = [("manufacturer", entry.get("serial"), "Serial number")]
        issuer = f" ({entry['issued_by']})" if entry.get("issued_by") else ""
        identifications.append(("other", entry.get("certificate"), f"Calibration certificate{issuer}"))
        identifications.append(("other", entry.get("due"), "Calibration due date"))
        present = [(who, str(value), name) for who, value, name in identifications if value]
        if present:
            element = _el(equipment, "identifications")
            for who, value, name in present:
                _identification(element, who, value, name, lang)


def _ref_type(role: Any) -> str:
    """A project refType from a free-text role; refTypes are a blank-separated list, so blanks become _."""
    return "daq_" + re.sub(r"\s+", "_", str(role or "standard").strip())


def _real(parent: ET.Element, value: Any, unit: str, what: str) -> ET.Element:
    real = _el(parent, "real", ns=SI_NS)
    _el(real, "value", _number(value, what), ns=SI_NS)
    _el(real, "unit", unit, ns=SI_NS)
    return real


def _influence_conditions(parent: ET.Element, environment: Mapping[str, Any], lang: str) -> None:
    """Temperature and humidity as si:real: the mean, and the minimum and maximum during the calibration."""
    present = [(key, name) for key, name in (("temperature", "Ambient temperature"),
                                             ("humidity", "Relative humidity of the air"))
               if (environment.get(key) or {}).get("value") is not None]
    if not present:
        return
    conditions = _el(parent, "influenceConditions")
    for key, name in present:
        reading = environment[key]
        condition = _el(conditions, "influenceCondition", refType=f"daq_{key}")
        _text(condition, "name", name, lang)
        if environment.get("source"):
            _text(condition, "description", f"Measured with {environment['source']}", lang)
        data = _el(condition, "data")
        unit = dsi_unit(str(reading.get("unit") or ""))
        for field, ref_type, label in (("value", "basic_measuredValue", "Mean"), ("min", "daq_minimum", "Minimum"),
                                       ("max", "daq_maximum", "Maximum")):
            if reading.get(field) is not None:
                quantity = _el(data, "quantity", refType=ref_type)
                _text(quantity, "name", f"{label} {name.lower()}", lang)
                _real(quantity, reading[field], unit, f"environment {key} {field}")


def _expanded_unc(real: ET.Element, point: Mapping[str, Any], what: str) -> None:
    """si:expandedUnc: U, k and the coverage probability are all mandatory in D-SI."""
    if point.get("U") is None:
        return
    if point.get("k") is None or point.get("coverage_probability") is None:
        raise ValueError(f"{what}: the DCC needs k and the coverage probability with the expanded uncertainty U")
    if float(point["U"]) < 0:
        raise ValueError(f"{what}: expanded uncertainty U must not be negative, got {point['U']!r}")
    unc = _el(real, "expandedUnc", ns=SI_NS)
    _el(unc, "uncertainty", _number(point["U"], f"{what} U"), ns=SI_NS)
    _el(unc, "coverageFactor", _plain_number(point["k"], f"{what} k", _K_VALUE, "a number >= 1"), ns=SI_NS)
    _el(unc, "coverageProbability", _plain_number(point["coverage_probability"], f"{what} coverage probability",
                                                  _PROBABILITY, "between 0 and 1"), ns=SI_NS)
    _el(unc, "distribution", "normal", ns=SI_NS)


def _conformity(quantity: ET.Element, point: Mapping[str, Any], unit: str, lang: str, what: str) -> None:
    """The decision for this point, with the tolerance it was judged against, as dcc:metaData (basic_conformity)."""
    conformity = CONFORMITY.get(str(point.get("decision") or "").lower())
    if conformity is None:
        return
    meta = _el(_el(quantity, "measurementMetaData"), "metaData", refType="basic_conformity")
    declaration = str(point.get("decision_text") or point["decision"])
    if point.get("tolerance_text"):
        declaration += f" (tolerance {point['tolerance_text']})"
    _text(meta, "declaration", declaration, lang)
    _el(meta, "conformity", conformity)
    if point.get("tolerance") is not None:
        tolerance = _el(_el(meta, "data"), "quantity", refType="daq_toleranceLimit")
        _text(tolerance, "name", "Tolerance (±)", lang)
        _real(tolerance, point["tolerance"], unit, f"{what} tolerance")


def _point(parent: ET.Element, point: Mapping[str, Any], unit: str, lang: str, what: str) -> None:
    result = _el(parent, "result", refType="daq_calibrationPoint")
    _text(result, "name", str(point.get("label") or f"Point {point.get('index', '')}"), lang)
    data = _el(result, "data")
    for key, (ref_type, name) in POINT_QUANTITIES.items():
        if point.get(key) is None:
            continue
        quantity = _el(data, "quantity", refType=ref_type)
        _text(quantity, "name", name, lang)
        real = _real(quantity, point[key], unit, f"{what} {key}")
        if key == "error":
            _expanded_unc(real, point, what)
            _conformity(quantity, point, unit, lang, what)
    if len(data) == 0:
        raise ValueError(f"{what}: a calibration point needs at least one value")


def _measurement_result(parent: ET.Element, result: Mapping[str, Any], data: Mapping[str, Any], lang: str,
                        ref_type: str, suffix: str) -> None:
    element = _el(parent, "measurementResult", refType=ref_type)
    channel = f" ({result['channel']})" if result.get("channel") else ""
    name = f"{result.get('quantity') or 'Measurement'}{channel}{suffix}"
    _text(element, "name", name, lang)
    _used_methods(element, data.get("method") or {}, lang)
    _measuring_equipments(element, data.get("traceability") or [], lang)
    _influence_conditions(element, data.get("environment") or {}, lang)
    unit = dsi_unit(str(result.get("unit") or ""))
    results = _el(element, "results")
    points = result.get("points") or []
    if not points:
        raise ValueError(f"result {name!r} has no calibration points")
    for number, point in enumerate(points):
        _point(results, point, unit, lang, f"{name} point {point.get('index', number)}")


def _measurement_results(root: ET.Element, data: Mapping[str, Any], lang: str) -> None:
    """As-left (or only) results first; an adjusted item also gets its as-found results, marked as such."""
    results = _el(root, "measurementResults")
    adjusted = bool((data.get("adjustment") or {}).get("adjusted"))
    for result in data.get("results") or []:
        _measurement_result(results, result, data, lang, AS_LEFT_REF_TYPE if adjusted else "daq_calibrationResult",
                            " (as left)" if adjusted else "")
    for result in (data.get("adjustment") or {}).get("as_found") or data.get("as_found") or []:
        _measurement_result(results, result, data, lang, AS_FOUND_REF_TYPE, " (as found)")
    if len(results) == 0:
        raise ValueError("the certificate data has no results; a DCC needs at least one measurement result")


def dcc_xml(data: dict[str, Any]) -> bytes:
    """The DCC XML document (UTF-8, pretty-printed) for the certificate data; same data gives the same bytes."""
    lang = str(data.get("language") or "en")
    root = ET.Element(f"{{{DCC_NS}}}digitalCalibrationCertificate",
                      {f"{{{XSI_NS}}}schemaLocation": SCHEMA_LOCATION, "schemaVersion": SCHEMA_VERSION})
    _administrative_data(root, data, lang)
    _measurement_results(root, data, lang)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body.encode("utf-8") + b"\n"
