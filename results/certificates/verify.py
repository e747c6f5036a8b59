"""Is this certificate file the one the laboratory signed? If not, what differs?

Checks, in order: the file carries a signature block; the block is signed by the key it names;
every byte above it is what was signed; the head's signature over the certificate number and the
results hash holds with the same key; the key is one the laboratory uses (when the caller knows
its keys); and, given the records, that the certificate still says what the records say and has
not been replaced by an amendment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from results.certificates.content import key_fingerprint
from results.certificates.seal import canonical, changed_ranges, manifest_signature_valid, unseal
from results.records.signing import signature_valid


@dataclass
class Verdict:
    valid: bool
    number: str | None
    kind: str
    facts: list[str] = field(default_factory=list)
    """What was checked and held."""
    problems: list[str] = field(default_factory=list)
    """Exactly what differs or fails; empty when valid."""
    warnings: list[str] = field(default_factory=list)


def certificate_digest_of(data: dict[str, Any]) -> str:
    """The digest the head signs, rebuilt from the certificate data (same fields as the records use)."""
    text = canonical({"certificate": data["number"], "replaces": data.get("replaces"),
                      "results_sha256": data["results_sha256"]}).decode()
    return hashlib.sha256(text.encode()).hexdigest()


def verify_document(content: bytes, *, trusted_keys: set[str] | None = None,
                    records: dict[str, Any] | None = None, replaced_by: str | None = None) -> Verdict:
    """`records`: the certificate data rebuilt from the lab's records, when the verifier has them."""
    unsealed = unseal(content)
    manifest = unsealed.manifest
    if manifest is None:
        return Verdict(False, None, unsealed.kind, problems=unsealed.problems)
    data = manifest.get("data") or {}
    verdict = Verdict(True, str(manifest.get("certificate")), unsealed.kind)
    if not manifest_signature_valid(manifest):
        verdict.problems.append("the signature block does not match its own signature: it was edited")
        return _done(verdict)
    key = str(manifest["public_key"])
    verdict.facts.append(f"signature block intact, Ed25519 key fingerprint {key_fingerprint(key)}")
    if hashlib.sha256(unsealed.body).hexdigest() != manifest.get("body_sha256"):
        verdict.problems.append(f"the {unsealed.kind.upper()} content was changed after signing")
        verdict.problems += changed_ranges(unsealed.body, manifest)
        verdict.problems += _content_differences(unsealed.kind, unsealed.body, data)
    else:
        verdict.facts.append(f"every byte of the {unsealed.kind.upper()} content is as signed "
                             f"({manifest['body_length']} bytes, SHA-256 {manifest['body_sha256'][:16]}...)")
    digest = certificate_digest_of(data) if "results_sha256" in data else ""
    if manifest.get("certificate_digest") != digest or not signature_valid(
            key, str(manifest.get("head_signature", "")), bytes.fromhex(digest or "00")):
        verdict.problems.append("the head's signature over the certificate number and results does not hold")
    else:
        auth = data.get("authorisation") or {}
        verdict.facts.append(f"signed by {auth.get('name', '?')} ({auth.get('role', '?')}) on "
                             f"{str(auth.get('signed_at', '?'))[:19]}; "
                             f"verification code {data.get('verification_code')}")
    if trusted_keys is None:
        verdict.warnings.append("the signing key was not checked against the laboratory's keys: give --db (the "
                                "lab's records) or --public-key (the key the lab publishes)")
    elif key not in trusted_keys:
        verdict.problems.append(f"signed with key {key_fingerprint(key)}, which is not one of the laboratory's keys")
    else:
        verdict.facts.append("the signing key is the laboratory's")
    if records is not None:
        differences = data_differences(records, data)
        if differences:
            verdict.problems.append("the certificate differs from the laboratory's records:")
            verdict.problems += [f"  {d}" for d in differences]
        else:
            verdict.facts.append("what the certificate states equals the laboratory's records")
    if replaced_by:
        verdict.warnings.append(f"this certificate was amended: it is replaced by {replaced_by}")
    return _done(verdict)


def _done(verdict: Verdict) -> Verdict:
    verdict.valid = not verdict.problems
    return verdict


def _content_differences(kind: str, body: bytes, data: dict[str, Any]) -> list[str]:
    """Name the stated values that no longer equal the signed ones (DCC: every value is readable)."""
    if kind != "dcc":
        return []
    from results.certificates.dcc_schema import dcc_values

    try:
        found = dcc_values(body)
    except Exception as exc:  # noqa: BLE001 - a mangled file is a finding, not a crash
        return [f"the XML no longer reads as a DCC ({exc})"]
    return dcc_differences(data, found)


def dcc_differences(data: dict[str, Any], found: dict[str, Any]) -> list[str]:
    out = []
    if found.get("number") != data.get("number"):
        out.append(f"certificate number: signed {data.get('number')!r}, file says {found.get('number')!r}")
    signed = [(g, p) for g in data.get("results", []) for p in g["points"]]
    points = [q.get("values", {}) for g in found.get("results", []) for q in g.get("points", [])]
    if len(points) != len(signed):
        out.append(f"number of points: signed {len(signed)}, file has {len(points)}")
    for i, ((group, p), q) in enumerate(zip(signed, points, strict=False)):
        for key in ("nominal", "reference", "indication", "error", "U", "k"):
            if key in q and p.get(key) is not None and q[key] != p[key]:
                out.append(f"point {i + 1} ({p['label']}) {key}: signed {p[key]!r} {group['unit']}, "
                           f"file says {q[key]!r}")
    return out


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _flatten(v, f"{path}.{k}" if path else str(k))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out |= _flatten(v, f"{path}[{i}]")
        return out
    return {path: value}


def data_differences(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """Field-by-field differences, named by path (results[0].points[2].error)."""
    a, b = _flatten(expected), _flatten(found)
    out = []
    for path in sorted(set(a) | set(b)):
        if path.startswith("dates.issued"):
            continue
        if a.get(path) != b.get(path):
            out.append(f"{path}: records say {a.get(path)!r}, certificate says {b.get(path)!r}")
    return out
