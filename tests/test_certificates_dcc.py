"""The DCC writer: schema-valid PTB DCC 3.1.2 documents whose numbers read back exactly."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from results.certificates.dcc import DCC_NS, SI_NS, SOFTWARE_NAME, dcc_xml, dsi_unit
from results.certificates.dcc_schema import dcc_values, validate_dcc

NS = {"dcc": DCC_NS, "si": SI_NS}


def _point(index: int, label: str, nominal: float, reference: float, indication: float, U: float,
           tolerance: float, decision: str) -> dict[str, Any]:
    error = indication - reference
    return {"index": index, "label": label, "nominal": nominal, "reference": reference, "indication": indication,
            "error": error, "U": U, "k": 2.0, "coverage_probability": 0.9545, "dof_eff": 55.2,
            "error_text": f"{error * 1e6:+.1f} µV", "U_text": f"{U * 1e6:.0f} µV",
            "reference_text": f"{reference} V", "indication_text": f"{indication} V",
            "tolerance": tolerance, "tolerance_text": f"±{tolerance * 1e6:.0f} µV",
            "decision": decision, "decision_text": decision.capitalize()}


def certificate(**changes: Any) -> dict[str, Any]:
    """The brief's example certificate (DC voltage of a DMM, at the customer's site) with four points."""
    data: dict[str, Any] = {
        "schema": "daq-certificate/1", "number": "CAL-2026-00001", "replaces": None, "amendment_reason": "",
        "title": "Calibration certificate", "language": "en",
        "laboratory": {"name": "Simulated Calibration Laboratory", "address": "Jl. Contoh 1, Bandung, Indonesia",
                       "country": "ID", "accreditation": "ISO/IEC 17025, LK-000 (demo)",
                       "email": "lab@example.org", "verify_url": "https://lab.example.org/verify"},
        "customer": {"name": "PT Maju Jaya", "address": "Jl. Industri 5, Bekasi", "contact": "Budi"},
        "order": {"request": "REQ-2026-00001", "order_number": "ORD-2026-00001", "item_position": 1},
        "place": {"kind": "customer", "text": "Customer site: PT Maju Jaya, Jl. Industri 5, Bekasi"},
        "item": {"description": "Digital multimeter", "make": "Keysight", "model": "34465A", "serial": "MY-0001",
                 "parameter": "DC voltage", "identification": "MY-0001", "condition": "good, seals intact"},
        "dates": {"received": None, "calibration_begin": "2026-12-07", "calibration_end": "2026-12-07",
                  "issued": "2026-12-09"},
        "method": {"procedure": "DC voltage, 34465A-class DMM against a 5522A-class calibrator",
                   "version": "sha256:1a2b3c4d5e6f", "reference": "dcv-34465a.toml",
                   "description": "Comparison with a multifunction calibrator at 7 points."},
        "environment": {"temperature": {"value": 23.1, "min": 22.8, "max": 23.4, "unit": "°C"},
                        "humidity": {"value": 45.2, "min": 43.0, "max": 47.0, "unit": "%RH"},
                        "text": "23.1 °C (22.8 °C to 23.4 °C), 45 %RH (43 %RH to 47 %RH)",
                        "source": "Vaisala HMT330 SIMHMT330-0001"},
        "traceability": [{"role": "calibrator", "description": "Fluke 5522A multi-product calibrator",
                          "serial": "SIM5522A-0001", "certificate": "KAL-2026-0412",
                          "issued_by": "National Metrology Institute", "calibrated": "2026-04-12",
                          "due": "2027-04-12"}],
        "results": [{"quantity": "DC voltage", "unit": "V", "channel": "",
                     "columns": ["setpoint", "reference", "indication", "error", "U", "k"],
                     "points": [_point(0, "10 V", 10.0, 10.0000012, 10.000131, 4.1e-05, 0.00035, "pass"),
                                _point(1, "-10 V", -10.0, -9.9999987, -10.000212, 4.1e-05, 0.00035, "pass"),
                                _point(2, "1 V", 1.0, 1.00000031, 0.99999, 6.3e-06, 4e-05, "conditional pass"),
                                _point(3, "100 mV", 0.1, 0.1000000123456789, 0.09999, 1e-06, 5e-06, "fail")]},
                    {"quantity": "DC voltage", "unit": "mV", "channel": "front",
                     "columns": ["setpoint", "reference", "indication", "error", "U", "k"],
                     "points": [_point(0, "10 mV", 10.0, 10.00002, 9.9991, 0.0012, 0.004, "pass")]}],
        "uncertainty_statement": "The reported expanded uncertainty ... JCGM 100:2008 (GUM).",
        "decision_rule": {"name": "ILAC-G8 simple acceptance",
                          "specification": "Manufacturer's 1-year accuracy specification",
                          "text": "Pass: the error lies within the tolerance (simple acceptance, shared risk)."},
        "adjustment": {"adjusted": False, "text": "No adjustment was made: the results are as found and as left."},
        "statement": "The results relate only to the item calibrated.",
        "authorisation": {"name": "Dr. Siti Head", "role": "Head of laboratory", "username": "head",
                          "signed_at": "2026-12-09T10:00:00+00:00", "public_key": "ab" * 32},
        "results_sha256": "0" * 64, "result_version": 1, "verification_code": "7F3A-9C21-04BE-D2A8",
    }
    data.update(changes)
    return data


def ex_situ() -> dict[str, Any]:
    """Calibrated in the laboratory: a receipt date and performanceLocation laboratory."""
    return certificate(place={"kind": "laboratory", "text": "Laboratory"},
                       dates={"received": "2026-12-01", "calibration_begin": "2026-12-07",
                              "calibration_end": "2026-12-08", "issued": "2026-12-09"})


def amended() -> dict[str, Any]:
    return certificate(number="CAL-2026-00002", replaces="CAL-2026-00001", amendment_reason="Wrong serial number")


@pytest.mark.parametrize("make", [certificate, ex_situ, amended], ids=["in-situ", "ex-situ", "amended"])
def test_certificates_are_schema_valid(make: Any) -> None:
    assert validate_dcc(dcc_xml(make())) == []


def test_core_data_follows_the_certificate() -> None:
    in_situ = dcc_xml(certificate())
    assert b"<dcc:performanceLocation>customer</dcc:performanceLocation>" in in_situ
    assert b"receiptDate" not in in_situ
    assert b"previousReport" not in in_situ
    lab = dcc_xml(ex_situ())
    assert b"<dcc:performanceLocation>laboratory</dcc:performanceLocation>" in lab
    assert b"<dcc:receiptDate>2026-12-01</dcc:receiptDate>" in lab
    assert b"<dcc:countryCodeISO3166_1>ID</dcc:countryCodeISO3166_1>" in lab
    software = ET.fromstring(lab).find("dcc:administrativeData/dcc:dccSoftware/dcc:software", NS)
    assert software is not None and software.findtext("dcc:name/dcc:content", namespaces=NS) == SOFTWARE_NAME


def test_values_read_back_exactly() -> None:
    data = amended()
    values = dcc_values(dcc_xml(data))
    assert values["number"] == "CAL-2026-00002"
    assert values["replaces"] == "CAL-2026-00001"
    assert values["as_found"] == []
    assert [r["unit"] for r in values["results"]] == [r"\volt", r"\milli\volt"]
    for result, read in zip(data["results"], values["results"], strict=True):
        assert len(read["points"]) == len(result["points"])
        for point, back in zip(result["points"], read["points"], strict=True):
            assert back["label"] == point["label"]
            for key in ("nominal", "reference", "indication", "error", "U", "k", "coverage_probability",
                        "tolerance"):
                assert back["values"][key] == point[key], (point["label"], key)
    negative = values["results"][0]["points"][3]["values"]
    assert negative["error"] < 0 and negative["conformity"] == "fail"
    assert values["results"][0]["points"][2]["values"]["conformity"] == "conditionalPass"
    error = values["results"][0]["points"][0]["quantities"][3]
    assert error["refType"] == "basic_measurementError" and error["unit"] == r"\volt"


def test_previous_report_carries_the_hash_when_known() -> None:
    xml = dcc_xml(certificate(number="CAL-2026-00002", replaces="CAL-2026-00001", replaces_sha256="ab" * 32))
    assert validate_dcc(xml) == []
    report = ET.fromstring(xml).find("dcc:administrativeData/dcc:coreData/dcc:previousReport", NS)
    assert report is not None
    assert [child.text for child in report][1:] == ["CAL-2026-00001", "SHA-256", "ab" * 32]


def test_original_certificate_replaces_nothing() -> None:
    assert dcc_values(dcc_xml(certificate()))["replaces"] is None


def test_as_found_results_of_an_adjusted_item() -> None:
    as_found = copy.deepcopy(certificate()["results"][:1])
    as_found[0]["points"][0]["indication"] = 10.0009
    data = certificate(adjustment={"adjusted": True, "text": "Adjusted at 10 V.", "as_found": as_found})
    xml = dcc_xml(data)
    assert validate_dcc(xml) == []
    values = dcc_values(xml)
    assert values["as_found"][0]["points"][0]["values"]["indication"] == 10.0009
    assert values["results"][0]["points"][0]["values"]["indication"] == 10.000131


def test_influence_conditions_use_dsi_units() -> None:
    root = ET.fromstring(dcc_xml(certificate()))
    conditions = root.findall(".//dcc:measurementResult[1]/dcc:influenceConditions/dcc:influenceCondition", NS)
    read = {c.get("refType"): [(r.findtext("si:value", namespaces=NS), r.findtext("si:unit", namespaces=NS))
                               for r in c.iterfind("dcc:data/dcc:quantity/si:real", NS)] for c in conditions}
    assert read == {"daq_temperature": [("23.1", r"\degreecelsius"), ("22.8", r"\degreecelsius"),
                                          ("23.4", r"\degreecelsius")],
                    "daq_humidity": [("45.2", r"\percent"), ("43.0", r"\percent"), ("47.0", r"\percent")]}


def test_missing_unique_identifier_is_named() -> None:
    xml = dcc_xml(certificate()).replace(b"<dcc:uniqueIdentifier>CAL-2026-00001</dcc:uniqueIdentifier>", b"")
    problems = validate_dcc(xml)
    assert problems and any("uniqueIdentifier" in p for p in problems), problems


def test_text_in_a_value_is_named() -> None:
    xml = dcc_xml(certificate()).replace(b"<si:value>23.1</si:value>", b"<si:value>warm</si:value>", 1)
    problems = validate_dcc(xml)
    assert problems and any("si:value" in p and "warm" in p for p in problems), problems


def test_not_xml_is_a_problem_not_a_crash() -> None:
    assert validate_dcc(b"<dcc:digitalCalibrationCertificate")[0].startswith("not well-formed XML")
    with pytest.raises(ValueError, match="not a DCC"):
        dcc_values(b"<other/>")


def test_unknown_unit_is_a_clear_error() -> None:
    data = certificate()
    data["results"][0]["unit"] = "furlong"
    with pytest.raises(ValueError, match="unit 'furlong' has no D-SI mapping"):
        dcc_xml(data)


@pytest.mark.parametrize(("unit", "dsi"), [("V", r"\volt"), ("mV", r"\milli\volt"), ("Ω", r"\ohm"),
                                           ("ohm", r"\ohm"), ("kΩ", r"\kilo\ohm"), ("°C", r"\degreecelsius"),
                                           ("degC", r"\degreecelsius"), ("Pa", r"\pascal"), ("kPa", r"\kilo\pascal"),
                                           ("bar", r"\bar"), ("kg", r"\kilogram"), ("g", r"\gram"),
                                           ("mg", r"\milli\gram"), ("A", r"\ampere"), ("µA", r"\micro\ampere"),
                                           ("Hz", r"\hertz"), ("%RH", r"\percent")])
def test_unit_mapping(unit: str, dsi: str) -> None:
    assert dsi_unit(unit) == dsi


def test_non_finite_and_out_of_range_numbers_are_refused() -> None:
    data = certificate()
    data["results"][0]["points"][0]["error"] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        dcc_xml(data)
    data = certificate()
    data["results"][0]["points"][0]["k"] = 0.5
    with pytest.raises(ValueError, match="k must be"):
        dcc_xml(data)


def test_output_is_deterministic() -> None:
    first = dcc_xml(amended())
    assert first == dcc_xml(amended())
    assert first.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<dcc:digitalCalibrationCertificate')
