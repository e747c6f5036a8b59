"""A signature that travels inside the certificate file, over every byte before it.

The signed manifest is appended as a comment the format already allows after the document (a
PDF comment after %%EOF, an XML comment after the root element), so viewers and schema validators
still read the file, and one changed byte anywhere above it breaks the signature. The manifest
also carries the certificate data itself and per-block hashes of the body: that is what lets a
verifier say *what* was changed (which bytes, which PDF object, which stated value), not only
that something was.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "daq-seal/1"
BLOCK = 1024
_MARKERS = {
    "pdf": (b"\n%DAQ-SEAL-BEGIN\n", b"%DAQ-SEAL-END\n", b"%"),
    "dcc": (b"\n<!--DAQ-SEAL-BEGIN\n", b"DAQ-SEAL-END-->\n", b""),
}


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _blocks(body: bytes) -> list[str]:
    return [hashlib.sha256(body[i:i + BLOCK]).hexdigest()[:16] for i in range(0, len(body), BLOCK)]


def seal(body: bytes, kind: str, private_key: Ed25519PrivateKey, *, data: dict[str, Any],
         extra: dict[str, Any] | None = None) -> bytes:
    """`body` with its signed manifest appended; `data` is the certificate data the body renders."""
    begin, end, prefix = _MARKERS[kind]
    public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    manifest: dict[str, Any] = {
        "format": FORMAT, "kind": kind, "certificate": data.get("number"),
        "body_sha256": hashlib.sha256(body).hexdigest(), "body_length": len(body),
        "block_size": BLOCK, "blocks": _blocks(body), "data": data, "public_key": public.hex(),
    } | (extra or {})
    manifest["signature"] = private_key.sign(canonical(manifest)).hex()
    encoded = base64.b64encode(canonical(manifest)).decode()
    lines = b"".join(prefix + line.encode() + b"\n" for line in textwrap.wrap(encoded, 76))
    return body + begin + lines + prefix + end if prefix else body + begin + lines + end


@dataclass
class Unsealed:
    kind: str
    body: bytes
    manifest: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)


def kind_of(content: bytes) -> str | None:
    head = content[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        return "dcc"
    return None


def unseal(content: bytes) -> Unsealed:
    """Split a file into its body and manifest; problems say why there is no readable manifest."""
    kind = kind_of(content)
    if kind is None:
        return Unsealed("unknown", content, None, ["not a PDF or XML file"])
    begin, end, prefix = _MARKERS[kind]
    at = content.rfind(begin)
    if at < 0:
        return Unsealed(kind, content, None, ["no signature found in the file: it was not issued by this "
                                              "laboratory's system, or the signature block was removed"])
    body, block = content[:at], content[at + len(begin):]
    closing = (prefix + end) if prefix else end
    if not block.endswith(closing):
        return Unsealed(kind, body, None, ["the signature block is cut short or has bytes after it"])
    text = block[:-len(closing)]
    lines = [line[len(prefix):] if prefix else line for line in text.split(b"\n") if line]
    try:
        manifest = json.loads(base64.b64decode(b"".join(lines), validate=True))
        assert isinstance(manifest, dict) and manifest.get("format") == FORMAT
    except (ValueError, AssertionError):
        return Unsealed(kind, body, None, ["the signature block is damaged (not readable)"])
    return Unsealed(kind, body, manifest)


def manifest_signature_valid(manifest: dict[str, Any]) -> bool:
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(manifest.get("public_key", ""))))
        key.verify(bytes.fromhex(str(manifest.get("signature", ""))), canonical(unsigned))
    except (InvalidSignature, ValueError):
        return False
    return True


_OBJECT = re.compile(rb"(\d+) (\d+) obj\b")


def changed_ranges(body: bytes, manifest: dict[str, Any]) -> list[str]:
    """Where the body differs from what was signed, in bytes (and PDF objects when it is a PDF)."""
    size = int(manifest.get("block_size", BLOCK))
    signed: list[str] = list(manifest.get("blocks", []))
    now = _blocks(body)
    out = []
    length = int(manifest.get("body_length", -1))
    if len(body) != length:
        out.append(f"the file is {len(body)} bytes long before its signature, the signed one was {length} bytes "
                   f"({'added' if len(body) > length else 'removed'}: {abs(len(body) - length)} bytes)")
    first = next((i for i, (a, b) in enumerate(zip(signed, now, strict=False)) if a != b), None)
    if first is None and len(signed) != len(now):
        first = min(len(signed), len(now))
    if first is not None:
        changed = [i for i, (a, b) in enumerate(zip(signed, now, strict=False)) if a != b]
        ranges = ", ".join(f"{i * size}-{min((i + 1) * size, len(body)) - 1}" for i in changed[:8])
        more = f" and {len(changed) - 8} more blocks" if len(changed) > 8 else ""
        if changed and len(body) == length:
            out.append(f"bytes changed in range {ranges}{more}")
        elif len(body) != length:
            out.append(f"the first change is at or after byte {first * size}")
        if manifest.get("kind") == "pdf":
            objects = sorted({o for i in changed[:8] if (o := _object_at(body, i * size)) is not None})
            if objects:
                out.append("inside PDF object " + ", ".join(objects))
    return out


def _object_at(body: bytes, offset: int) -> str | None:
    last = None
    for match in _OBJECT.finditer(body, 0, min(len(body), offset + BLOCK)):
        last = f"{match.group(1).decode()} {match.group(2).decode()} obj"
    return last
