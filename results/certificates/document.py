"""The calibration certificate as a printable HTML document (then PDF), from the certificate data only.

Laid out for ISO/IEC 17025:2017 7.8.2.1 and 7.8.4.1: every page carries the laboratory, the
certificate number and "page X of Y" (7.8.2.1 c), and the end is marked, so a page cannot be
lost or added unnoticed. The items are in the order an assessor's checklist reads them.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from results.certificates import plots

CSS = """
@page { size: A4; margin: 28mm 18mm 22mm 18mm;
  @top-left { content: element(lab); }
  @top-right { content: "Certificate " string(number); font: 9pt "DejaVu Sans"; white-space: nowrap;
               width: 60mm; text-align: right; }
  @bottom-left { content: "Certificate " string(number) " · verification code " string(code);
                 font: 8pt "DejaVu Sans"; color: #444; }
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font: 8pt "DejaVu Sans"; } }
body { font: 9.5pt/1.35 "DejaVu Sans", sans-serif; color: #111; }
.running { position: running(lab); font: bold 10pt "DejaVu Sans"; }
.running small { font-weight: normal; color: #444; }
.number { string-set: number content(); }
.code { string-set: code content(); }
h1 { font-size: 17pt; margin: 0 0 2mm 0; letter-spacing: 0.5pt; }
h2 { font-size: 11pt; margin: 6mm 0 2mm 0; border-bottom: 0.6pt solid #888; padding-bottom: 1mm; }
table { border-collapse: collapse; width: 100%; }
table.facts td { padding: 1.2mm 2mm; vertical-align: top; border-bottom: 0.3pt solid #ccc; }
table.facts td.k { width: 42mm; color: #333; font-weight: bold; }
table.results th, table.results td { border: 0.4pt solid #999; padding: 1mm 1.5mm; text-align: right;
  font-variant-numeric: tabular-nums; }
table.results th { background: #eee; text-align: center; }
table.results td.l { text-align: left; }
.replaces { border: 1pt solid #a00; padding: 2mm; margin: 2mm 0; color: #700; }
.signature { border: 0.8pt solid #333; padding: 3mm; margin-top: 5mm; display: flex; }
.signature img { width: 30mm; height: 30mm; float: right; margin-left: 4mm; }
.small { font-size: 8pt; color: #333; }
.end { text-align: center; margin-top: 8mm; font-weight: bold; letter-spacing: 1pt; }
.plot img { width: 100%; }
.keep { page-break-inside: avoid; }
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _img(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode()).decode()
    return f'<img alt="{_e(alt)}" src="data:image/svg+xml;base64,{data}">'


def _facts(rows: list[tuple[str, str]]) -> str:
    return '<table class="facts">' + "".join(
        f'<tr><td class="k">{_e(k)}</td><td>{v}</td></tr>' for k, v in rows) + "</table>"


def certificate_html(data: dict[str, Any], *, qr_svg: str | None = None) -> str:
    lab, item, dates, method = data["laboratory"], data["item"], data["dates"], data["method"]
    number = data["number"]
    parts = [f'<div class="running">{_e(lab["name"])}<br><small>{_e(lab["address"])}'
             f'{" · " + _e(lab["accreditation"]) if lab.get("accreditation") else ""}</small></div>',
             f'<h1>{_e(data["title"]).upper()}</h1>',
             f'<p>Certificate number <b class="number">{_e(number)}</b>'
             f' · results version {_e(data["result_version"])} · verification code '
             f'<b class="code">{_e(data.get("verification_code") or "none (draft)")}</b></p>']
    if data.get("replaces"):
        parts.append(f'<div class="replaces">This certificate replaces certificate {_e(data["replaces"])}, which is '
                     f'withdrawn. Reason for the amendment: {_e(data.get("amendment_reason") or "not stated")}</div>')
    received = dates.get("received")
    begin, end = dates["calibration_begin"], dates["calibration_end"]
    parts.append(_facts([
        ("Issued by", f'{_e(lab["name"])}, {_e(lab["address"])}'),
        ("Customer", f'{_e(data["customer"]["name"])}'
                     f'{", " + _e(data["customer"]["address"]) if data["customer"].get("address") else ""}'),
        ("Order", f'{_e(data["order"]["order_number"] or "")} (request {_e(data["order"]["request"])}, '
                  f'item {_e(data["order"]["item_position"])})'),
        ("Item calibrated", f'{_e(item["description"])}: {_e(item["make"])} {_e(item["model"])}, '
                            f'serial number {_e(item["serial"])}'
                            f'{", lab identification " + _e(item["identification"]) if item.get("identification") not in (None, item["serial"]) else ""}'),  # noqa: E501
        ("Quantity calibrated", _e(item["parameter"])),
        ("Condition of the item", _e(item["condition"])),
        ("Place of calibration", _e(data["place"]["text"])),
        ("Date of receipt", _e(received) if received else "not applicable (calibrated at the customer's site)"),
        ("Date of calibration", _e(begin if begin == end else f"{begin} to {end}")),
        ("Date of issue", _e(dates["issued"])),
        ("Method", f'{_e(method["procedure"])}, procedure {_e(method["reference"])} version '
                   f'{_e(method["version"])}. {_e(method["description"])}'),
    ]))
    parts.append(_authorisation(data, qr_svg))
    parts.append(f'<p class="small">{_e(data["statement"])}</p>')
    parts.append('<h2 style="page-break-before: always">Results of measurement</h2>')
    parts.append('<p class="small">Error E = indication of the item − reference value. U: expanded uncertainty '
                 'of E at coverage factor k. Tolerance: the specification the conformity statement refers to.</p>')
    for group in data["results"]:
        parts.append(_results_table(group))
        parts.append(f'<div class="plot keep">{_img(_plot(group), "error versus point")}</div>')
    env = data.get("environment")
    parts += [
        "<h2>Measurement uncertainty</h2>", f"<p>{_e(data['uncertainty_statement'])}</p>",
        "<h2>Statement of conformity</h2>",
        f"<p>Decision rule: {_e(data['decision_rule']['name'])}. {_e(data['decision_rule']['text'])} "
        f"The tolerance is {_e(data['decision_rule']['specification'])}. "
        "The decision for each point is given in the results table.</p>",
        "<h2>Environmental conditions</h2>",
        f"<p>{_e(env['text']) + (', measured with ' + _e(env['source']) if env.get('source') else '') if env else 'Not recorded during the calibration.'}</p>",  # noqa: E501
        "<h2>Metrological traceability</h2>",
        "<p>The measurements are traceable to the International System of Units (SI) through the following "
        "reference standards and their calibration certificates:</p>", _traceability(data["traceability"]),
        "<h2>Adjustment</h2>", f"<p>{_e(data['adjustment']['text'])}</p>",
        f'<p class="end">— End of certificate {_e(number)} —</p>',
    ]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(data['title'])} {_e(number)}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")


def _authorisation(data: dict[str, Any], qr_svg: str | None) -> str:
    auth = data.get("authorisation")
    if not auth:
        return '<div class="signature"><b>DRAFT — not authorised, not valid as a certificate.</b></div>'
    qr = _img(qr_svg, "verification QR code") if qr_svg else ""
    url = data["laboratory"].get("verify_url")
    return (f'<div class="signature keep">{qr}<div>Authorised and electronically signed by<br>'
            f'<b>{_e(auth["name"])}</b>, {_e(auth["role"])}<br>on {_e(auth["signed_at"][:19].replace("T", " "))} '
            f'UTC<br><br>Verification code: <b>{_e(data["verification_code"])}</b><br>'
            f'<span class="small">Signing key (Ed25519) fingerprint {_e(auth["key_fingerprint"])}. '
            f'Check this file with <i>daq certificate verify</i>'
            f'{" or at " + _e(url) if url else ""}. The electronic signature replaces a handwritten one.'
            '</span></div></div>')


def _results_table(group: dict[str, Any]) -> str:
    unit = group["unit"]
    title = f'{_e(group["quantity"])}{" — " + _e(group["channel"]) if group.get("channel") else ""}'
    head = ("<tr><th>#</th><th>Point</th><th>Reference value</th><th>Indication</th><th>Error E</th><th>U</th>"
            "<th>k</th><th>Tolerance</th><th>Decision</th></tr>")
    rows = "".join(
        f'<tr><td>{i + 1}</td><td class="l">{_e(p["label"])}</td><td>{_e(p["reference_text"])}</td>'
        f'<td>{_e(p["indication_text"])}</td><td>{_e(p["error_text"])}</td><td>{_e(p["U_text"])}</td>'
        f'<td>{p["k"]:.2f}</td><td>{_e(p["tolerance_text"])}</td><td class="l">{_e(p["decision_text"])}</td></tr>'
        for i, p in enumerate(group["points"]))
    return f'<p><b>{title}</b> (unit {_e(unit)})</p><table class="results keep">{head}{rows}</table>'


def _plot(group: dict[str, Any]) -> str:
    points = [{"nominal": p["nominal"], "label": p["label"], "error": p["error"], "U": p["U"],
               "tolerance": p["tolerance"], "decision": p["decision"]} for p in group["points"]]
    return plots.error_plot(points, group["unit"], title=f'{group["quantity"]}: error with expanded uncertainty U')


def _traceability(standards: list[dict[str, Any]]) -> str:
    if not standards:
        return "<p><b>No reference standard is on record for this run.</b></p>"
    head = ("<tr><th>Standard</th><th>Serial number</th><th>Certificate</th><th>Issued by</th>"
            "<th>Calibrated</th><th>Due</th></tr>")
    rows = "".join(f'<tr><td class="l">{_e(s["description"])} ({_e(s["role"])})</td><td class="l">{_e(s["serial"])}'
                   f'</td><td class="l">{_e(s["certificate"])}</td><td class="l">{_e(s["issued_by"])}</td>'
                   f'<td>{_e(s["calibrated"])}</td><td>{_e(s["due"])}</td></tr>' for s in standards)
    return f'<table class="results">{head}{rows}</table>'
