"""What a certificate states, gathered once from the records into one plain structure.

The PDF, the DCC and the verifier all read this dict and nothing else, so the human-readable and
the machine-readable certificate cannot disagree, and a verifier can compare a file against it
field by field. Numbers are kept unrounded next to their printed text (rounded per ILAC-P14), so
the DCC carries full values while the PDF shows what a certificate must show.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from results.certificates.numbers import readings_scale, scale_for, value_text
from results.records.errors import Refused
from results.records.models import (
    CertificateNumberRow,
    ItemResultRow,
    LaboratoryRow,
    OrderItemRow,
    OrderRow,
    OrganisationRow,
    SampleMovementRow,
    SignatureRow,
    UserRow,
)
from results.store.models import RunRow

SCHEMA = "daq-certificate/1"

STATEMENT = ("The results in this certificate relate only to the item calibrated, at the time of calibration and "
             "under the conditions stated. This certificate shall not be reproduced except in full without the "
             "written approval of the issuing laboratory.")

DECISION_RULES = {
    "guarded": ("Guarded acceptance (ILAC-G8:09/2019 4.2.3, guard band w = U): Pass when the error lies inside the "
                "tolerance shrunk by U; Fail when it lies outside the tolerance widened by U; otherwise conditional "
                "pass or conditional fail, and no conformity is stated with confidence."),
    "simple": ("Simple acceptance (ILAC-G8:09/2019 4.2.1, w = 0, shared risk): Pass when the error lies within the "
               "tolerance, Fail otherwise; at a tolerance limit the probability of false acceptance approaches 50 %."),
}

DECISION_TEXT = {"pass": "Pass", "fail": "Fail", "conditional pass": "Conditional pass",
                 "conditional fail": "Conditional fail", "undecided": "Undecided"}

QUANTITIES = {"V": "DC voltage", "A": "DC current", "Ω": "Resistance", "ohm": "Resistance", "°C": "Temperature",
              "degC": "Temperature", "kPa": "Pressure", "bar": "Pressure", "Pa": "Pressure", "g": "Mass",
              "kg": "Mass", "mg": "Mass"}


def verification_code(digest: str) -> str:
    """The code printed (and in the QR) that ties a paper copy to the signed record: 16 hex digits of it."""
    return "-".join(digest[i:i + 4].upper() for i in range(0, 16, 4))


def key_fingerprint(public_key_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:16]


async def certificate_data(s: AsyncSession, cert: CertificateNumberRow, *, issued: str) -> dict[str, Any]:
    """The certificate `cert` as it is (or will be) issued on `issued` (ISO date)."""
    result = await s.get(ItemResultRow, cert.result_id)
    item = await s.get(OrderItemRow, cert.item_id)
    assert result is not None and item is not None
    order = await s.get(OrderRow, item.order_id)
    assert order is not None
    org = await s.get(OrganisationRow, order.organisation_id)
    run = await s.get(RunRow, result.run_id)
    lab = await s.get(LaboratoryRow, 1)
    if lab is None:
        raise Refused("R-LAB", "the laboratory's identity (name, address) is not set",
                      "an administrator sets it: daq orders laboratory --name NAME --address ADDRESS --country CC")
    assert org is not None and run is not None
    content = json.loads(result.content_json)
    signature = await s.scalar(select(SignatureRow).where(SignatureRow.certificate_id == cert.id))
    signer = await s.get(UserRow, signature.signer_id) if signature is not None else None
    received = await s.scalar(select(SampleMovementRow).where(
        SampleMovementRow.item_id == item.id, SampleMovementRow.direction == "received").order_by(
        SampleMovementRow.id).limit(1))
    options = json.loads(run.options_json or "{}")
    points = content.get("points", [])
    rule_key = _rule_key(points)
    in_situ = order.service == "insitu"
    return {
        "schema": SCHEMA,
        "number": cert.number,
        "replaces": cert.replaces,
        "amendment_reason": result.reason if cert.replaces else "",
        "title": "Calibration certificate",
        "language": "en",
        "laboratory": {"name": lab.name, "address": lab.address, "country": lab.country,
                       "accreditation": lab.accreditation, "email": lab.email, "verify_url": lab.verify_url},
        "customer": {"name": org.name, "address": org.address, "contact": ""},
        "order": {"request": order.request_number, "order_number": order.order_number,
                  "item_position": item.position},
        "place": ({"kind": "customer", "text": f"Customer's site: {order.site or org.name}"} if in_situ else
                  {"kind": "laboratory", "text": f"Laboratory: {lab.name}, {lab.address}"}),
        "item": {"description": item.description or f"{item.parameter} instrument",
                 "make": item.make, "model": item.model, "serial": item.serial, "parameter": item.parameter,
                 "identification": item.sample_id or item.serial,
                 "condition": (received.condition if received is not None else
                               "calibrated in situ, in its working condition at the customer's site")},
        "dates": {"received": received.at[:10] if received is not None else None,
                  "calibration_begin": (content.get("started") or run.created_at)[:10],
                  "calibration_end": (content.get("finished") or run.finished_at or run.created_at)[:10],
                  "issued": issued},
        "method": {"procedure": run.procedure_name,
                   "version": "sha256:" + hashlib.sha256(run.procedure_toml.encode()).hexdigest()[:12],
                   "reference": run.procedure_source.rsplit("/", 1)[-1],
                   "description": (f"Comparison with the reference standard at {len(points)} point"
                                   f"{'s' if len(points) != 1 else ''}; each point "
                                   "was read after the readings were detected as statistically stable, "
                                   "then repeated readings were taken.")},
        "environment": _environment(points),
        "traceability": [_standard(st) for st in options.get("standards", content.get("standards", []))],
        "results": _results(points),
        "uncertainty_statement": _uncertainty_statement(points),
        "decision_rule": {"name": _rule_name(points), "specification": "the manufacturer's accuracy specification",
                          "text": DECISION_RULES.get(rule_key, _rule_name(points))},
        "adjustment": {"adjusted": False,
                       "text": "No adjustment was made: the results are as found and as left."},
        "statement": STATEMENT,
        "authorisation": None if signature is None or signer is None else {
            "name": signer.full_name, "role": "Head of laboratory", "username": signer.username,
            "signed_at": signature.signed_at, "public_key": signature.public_key,
            "key_fingerprint": key_fingerprint(signature.public_key)},
        "results_sha256": result.content_sha256,
        "result_version": result.version,
        "verification_code": verification_code(signature.digest) if signature is not None else None,
    }


def _rule_name(points: list[dict[str, Any]]) -> str:
    for p in points:
        decision = p.get("decision")
        if isinstance(decision, dict) and decision.get("rule"):
            return str(decision["rule"])
    return "no statement of conformity requested"


def _rule_key(points: list[dict[str, Any]]) -> str:
    name = _rule_name(points).lower()
    return "guarded" if "guard" in name else "simple" if "simple" in name else ""


def _statement(p: dict[str, Any]) -> str:
    decision = p.get("decision")
    if isinstance(decision, dict):
        return str(decision.get("statement") or decision.get("outcome") or "")
    return str(decision or "")


def _results(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points grouped by what was measured (one table per UUT channel and unit)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in points:
        groups.setdefault((str(p.get("channel") or ""), str(p.get("unit", ""))), []).append(p)
    out = []
    for (channel, unit), members in groups.items():
        out.append({"quantity": QUANTITIES.get(unit, "Quantity"), "unit": unit, "channel": channel,
                    "points": [_point(p, unit) for p in members]})
    return out


def _number(x: Any) -> float | None:
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def _point(p: dict[str, Any], unit: str) -> dict[str, Any]:
    statement = _statement(p)
    error, U = float(p["error"]), float(p["U"])
    scale = scale_for(error, U, unit)
    readings = readings_scale(scale)
    tolerance = _number(p.get("tolerance"))
    nominal = float(p["nominal"])
    reference, indication = _number(p.get("ref_mean")), _number(p.get("uut_mean"))
    return {
        "index": int(p.get("point_index", 0)), "label": str(p.get("label") or value_text(nominal, unit)),
        "nominal": nominal, "reference": reference, "indication": indication,
        "error": error, "U": U, "k": float(p["k"]),
        "coverage_probability": float((p.get("budget") or {}).get("p", 0.9545)),
        "dof_eff": _number(p.get("dof_eff")),
        "error_text": scale.text(error, signed=True), "U_text": scale.text(U),
        "reference_text": readings.text(reference), "indication_text": readings.text(indication),
        "tolerance": tolerance, "tolerance_text": "±" + scale.text(tolerance) if tolerance is not None else "—",
        "decision": statement or None, "decision_text": DECISION_TEXT.get(statement, statement or "—"),
    }


def _uncertainty_statement(points: list[dict[str, Any]]) -> str:
    ks = sorted({round(float(p["k"]), 2) for p in points}) if points else [2.0]
    k_text = f"k = {ks[0]:.2f}" if len(ks) == 1 else f"k from {ks[0]:.2f} to {ks[-1]:.2f} (stated per point)"
    return ("The reported expanded uncertainty of measurement U is the standard uncertainty of measurement "
            f"multiplied by the coverage factor {k_text}, which for the effective degrees of freedom of each "
            "point corresponds to a coverage probability of approximately 95 %. The standard uncertainty was "
            "evaluated in accordance with JCGM 100:2008 (GUM) and EA-4/02 M:2022; it includes the contributions of "
            "the reference standards, the repeatability and the resolution of the item.")


def _environment(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Mean and range of the room over the whole calibration, from the monitor read at every point."""
    found: dict[str, dict[str, Any]] = {}
    source = ""
    for p in points:
        env = p.get("environment")
        if not isinstance(env, dict):
            continue
        source = source or str(env.get("source", ""))
        for key in ("temperature", "humidity"):
            q = env.get(key)
            if not isinstance(q, dict) or q.get("mean") is None:
                continue
            agg = found.setdefault(key, {"sum": 0.0, "n": 0, "min": math.inf, "max": -math.inf,
                                         "unit": q.get("unit", "")})
            agg["sum"] += float(q["mean"])
            agg["n"] += 1
            low, high = q.get("min"), q.get("max")
            agg["min"] = min(agg["min"], float(q["mean"] if low is None else low))
            agg["max"] = max(agg["max"], float(q["mean"] if high is None else high))
    if not found:
        return None
    out: dict[str, Any] = {"source": source}
    parts = []
    for key, agg in found.items():
        unit = agg["unit"]
        value, lo, hi = round(agg["sum"] / agg["n"], 1), round(agg["min"], 1), round(agg["max"], 1)
        out[key] = {"value": value, "min": lo, "max": hi, "unit": unit}
        sep = " " if unit else ""
        parts.append(f"{key}: {value:.1f}{sep}{unit} ({lo:.1f}{sep}{unit} to {hi:.1f}{sep}{unit})")
    text = "; ".join(parts)
    out["text"] = text[:1].upper() + text[1:]
    return out


def _standard(st: dict[str, Any]) -> dict[str, Any]:
    return {"role": st.get("instrument", ""), "description": f"{st.get('make', '')} {st.get('model', '')}".strip(),
            "serial": st.get("serial", ""), "certificate": st.get("certificate_number", ""),
            "issued_by": st.get("issuing_lab", ""), "calibrated": str(st.get("issued_on", "")),
            "due": str(st.get("due_on", ""))}
