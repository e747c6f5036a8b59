"""Issuing a certificate: render its PDF and DCC from the records, seal both with the head's key, keep them.

Runs inside the head's signing transaction, while the passphrase has unlocked the key: the files
the customer later downloads are these bytes, never re-rendered, so what was signed is what is
delivered. If rendering fails, the signature is not recorded either (one transaction).
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession

from results.certificates.content import certificate_data
from results.certificates.dcc import dcc_xml
from results.certificates.dcc_schema import validate_dcc
from results.certificates.document import certificate_html
from results.certificates.pdf import html_to_pdf
from results.certificates.seal import canonical, seal
from results.records import audit
from results.records.models import CertificateDocumentRow, CertificateNumberRow, SignatureRow


def qr_svg(text: str) -> str:
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return str(image.to_string(encoding="unicode"))


def verification_target(data: dict[str, Any]) -> str:
    """What the QR holds: the lab's verification page with number and code, or the two alone."""
    url = data["laboratory"].get("verify_url")
    if url:
        return f"{url}?certificate={data['number']}&code={data['verification_code']}"
    return f"{data['number']} {data['verification_code']}"


async def issue_documents(s: AsyncSession, cert: CertificateNumberRow, signature: SignatureRow,
                          key: Ed25519PrivateKey, *, issued: str, at: str, actor: str) -> list[CertificateDocumentRow]:
    data = await certificate_data(s, cert, issued=issued)
    extra = {"certificate_digest": signature.digest, "head_signature": signature.signature}
    xml = dcc_xml(data)
    problems = validate_dcc(xml)
    if problems:  # our own writer broke the schema: a defect, never a certificate
        raise RuntimeError(f"the DCC of {cert.number} does not validate: {problems[:3]}")
    sealed_xml = seal(xml, "dcc", key, data=data, extra=extra)
    html = certificate_html(data, qr_svg=qr_svg(verification_target(data)))
    pdf = html_to_pdf(html, attachments=[
        (sealed_xml, f"{cert.number}.xml", "Digital calibration certificate (PTB DCC 3.1.2), signed"),
        (canonical(data), f"{cert.number}.json", "The certificate's data as signed")])
    sealed_pdf = seal(pdf, "pdf", key, data=data, extra=extra)
    rows = []
    for kind, name, content in (("pdf", f"{cert.number}.pdf", sealed_pdf), ("dcc", f"{cert.number}.xml", sealed_xml)):
        row = CertificateDocumentRow(certificate_id=cert.id, kind=kind, file_name=name, content=content,
                                     sha256=hashlib.sha256(content).hexdigest(), created_at=at)
        s.add(row)
        await s.flush()
        await audit.append(s, actor=actor, action=f"issue certificate {kind}", entity="certificate_documents",
                           entity_id=row.id, detail={"certificate": cert.number})
        rows.append(row)
    return rows

