"""HTML/CSS to PDF (and PDF pages to PNG for looking at them), through WeasyPrint.

WeasyPrint needs the Pango text library from the operating system; without it the import fails
deep inside cffi, so the failure is turned into one sentence that says what to install.
"""

from __future__ import annotations

from typing import Any

from daq.errors import ConfigError


def _weasyprint() -> Any:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        raise ConfigError("PDF renderer", "weasyprint", f"cannot be loaded ({exc})",
                          "install Pango from the OS packages: apt-get install libpango-1.0-0 libpangoft2-1.0-0") \
            from None
    return weasyprint


def html_to_pdf(html: str, *, attachments: list[tuple[bytes, str, str]] | None = None) -> bytes:
    """Render a whole HTML document (its CSS inline) to PDF bytes.

    `attachments` are (content, file name, description) embedded as PDF file attachments, so the
    machine-readable twin of a certificate travels inside the human-readable one.
    """
    weasyprint = _weasyprint()
    files = [weasyprint.Attachment(string=content, name=name, description=description)  # type: ignore[call-arg]
             for content, name, description in attachments or []]
    document = weasyprint.HTML(string=html, base_url=".")
    return bytes(document.write_pdf(attachments=files or None, pdf_identifier=b"daq-certificate"))
