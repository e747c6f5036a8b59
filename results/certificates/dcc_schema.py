"""Checking a DCC: schema validity against the bundled PTB schemas, and reading its numbers back.

The schemas are bundled (`schemas/`) because validation must work offline: the DCC schema imports D-SI
from https://ptb.de/si/v2.1.0/SI_Format.xsd, and that namespace is mapped to the local copy. `dcc_values`
gives the verifier the certificate's numbers in the names of the certificate data, so it can say exactly
which value of a DCC file differs from the stored results.
"""

from __future__ import annotations

import functools
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import xmlschema

from results.certificates.dcc import AS_FOUND_REF_TYPE, DCC_NS, REF_TYPE_KEYS, SI_NS

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DCC_XSD = SCHEMA_DIR / "dcc-3.1.2.xsd"
SI_XSD = SCHEMA_DIR / "SI_Format-2.1.0.xsd"

_NS = {"dcc": DCC_NS, "si": SI_NS}


@functools.cache
def dcc_schema() -> xmlschema.XMLSchema:
    """The compiled DCC 3.1.2 schema with D-SI 2.1.0 from the local file; compiled once per process (~0.4 s)."""
    return xmlschema.XMLSchema(str(DCC_XSD), locations=[(SI_NS, str(SI_XSD))])


def _short_path(path: str | None) -> str:
    """An XPath with the namespace URIs replaced by the dcc:/si: prefixes, so a message names the element."""
    text = path or "/"
    return text.replace(f"{{{DCC_NS}}}", "dcc:").replace(f"{{{SI_NS}}}", "si:")


def validate_dcc(xml: bytes) -> list[str]:
    """The schema problems of a DCC document, one readable line per element (path: reason); empty when valid."""
    try:
        errors = list(dcc_schema().iter_errors(io.BytesIO(xml)))
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    except xmlschema.XMLSchemaException as exc:
        return [f"not a readable DCC document: {exc}"]
    problems: dict[str, str] = {}
    for error in errors:
        path = _short_path(error.path)
        if path in problems:  # one bad value fails several facets (pattern, xs:double); its first reason says it
            continue
        reason = _short_path(error.reason or str(error.message))
        value = f"{error.obj!r} is invalid: " if isinstance(error.obj, str) else ""
        problems[path] = f"{path}: {value}{reason}"
    return list(problems.values())


def _q(tag: str) -> str:
    prefix, name = tag.split(":")
    return f"{{{_NS[prefix]}}}{name}"


def _content(element: ET.Element | None) -> str | None:
    """The first dcc:content text of a textType element."""
    if element is None:
        return None
    content = element.find("dcc:content", _NS)
    return content.text or "" if content is not None else None


def _float(element: ET.Element | None, tag: str) -> float | None:
    child = element.find(tag, _NS) if element is not None else None
    return float(child.text or "") if child is not None else None


def _quantity(quantity: ET.Element) -> dict[str, Any]:
    """One dcc:quantity with a si:real: name, refType, value, D-SI unit and the expanded uncertainty."""
    real = quantity.find("si:real", _NS)
    unc = real.find("si:expandedUnc", _NS) if real is not None else None
    unit = real.find("si:unit", _NS) if real is not None else None
    conformity = quantity.find("dcc:measurementMetaData/dcc:metaData/dcc:conformity", _NS)
    tolerance = quantity.find("dcc:measurementMetaData/dcc:metaData/dcc:data/dcc:quantity/si:real", _NS)
    return {
        "name": _content(quantity.find("dcc:name", _NS)),
        "refType": quantity.get("refType"),
        "value": _float(real, "si:value"),
        "unit": unit.text if unit is not None else None,
        "U": _float(unc, "si:uncertainty"),
        "k": _float(unc, "si:coverageFactor"),
        "coverage_probability": _float(unc, "si:coverageProbability"),
        "conformity": conformity.text if conformity is not None else None,
        "tolerance": _float(tolerance, "si:value"),
    }


def _point(result: ET.Element) -> dict[str, Any]:
    """A calibration point in the certificate data's own keys (nominal, reference, indication, error, U, k)."""
    quantities = [_quantity(q) for q in result.findall("dcc:data/dcc:quantity", _NS)]
    values: dict[str, Any] = {}
    for quantity in quantities:
        key = REF_TYPE_KEYS.get(quantity["refType"] or "")
        if key is None:
            continue
        values[key] = quantity["value"]
        if key == "error":
            values.update({"U": quantity["U"], "k": quantity["k"],
                           "coverage_probability": quantity["coverage_probability"]})
            if quantity["conformity"] is not None:
                values["conformity"] = quantity["conformity"]
            if quantity["tolerance"] is not None:
                values["tolerance"] = quantity["tolerance"]
    return {"label": _content(result.find("dcc:name", _NS)), "values": values, "quantities": quantities}


def _measurement_result(element: ET.Element) -> dict[str, Any]:
    units = {q.text for q in element.iterfind("dcc:results/dcc:result/dcc:data/dcc:quantity/si:real/si:unit", _NS)}
    return {
        "name": _content(element.find("dcc:name", _NS)),
        "refType": element.get("refType"),
        "unit": units.pop() if len(units) == 1 else sorted(u or "" for u in units),
        "points": [_point(result) for result in element.iterfind("dcc:results/dcc:result", _NS)],
    }


def dcc_values(xml: bytes) -> dict[str, Any]:
    """What a DCC states, for comparison with the stored results: number, replaced number and every point.

    Returns {"number", "replaces", "results": [...], "as_found": [...]}; each result has "name", "refType",
    "unit" (D-SI) and "points", each point "label", "values" (keys as in the certificate data: nominal,
    reference, indication, error, U, k, coverage_probability, conformity, tolerance) and "quantities" (every
    dcc:quantity as name/refType/value/unit/U/k). Raises ValueError for a document that is not a DCC.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    if root.tag != _q("dcc:digitalCalibrationCertificate"):
        raise ValueError(f"not a DCC: the root element is {root.tag!r}")
    core = root.find("dcc:administrativeData/dcc:coreData", _NS)
    number = core.find("dcc:uniqueIdentifier", _NS) if core is not None else None
    previous = core.find("dcc:previousReport/dcc:referralID", _NS) if core is not None else None
    results = [_measurement_result(e) for e in root.iterfind("dcc:measurementResults/dcc:measurementResult", _NS)]
    return {
        "number": number.text if number is not None else None,
        "replaces": previous.text if previous is not None else None,
        "results": [r for r in results if r["refType"] != AS_FOUND_REF_TYPE],
        "as_found": [r for r in results if r["refType"] == AS_FOUND_REF_TYPE],
    }
