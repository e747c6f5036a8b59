"""`daq certificate ...`: check an issued certificate, preview a draft, print the reviewer's worksheet.

`verify` needs no account: anyone holding a certificate file may check it. With `--db` (the lab's
records) it also knows the lab's keys and the issued bytes, so it can say exactly what differs.
Exit status: 0 valid, 1 not valid, 2 a user mistake (no such file, no such certificate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select

from daq.errors import ConfigError
from results.certificates.verify import Verdict, verify_document
from results.records.errors import NotFound
from results.records.models import CertificateDocumentRow, CertificateNumberRow, ItemRunRow, SignatureRow, UserRow
from runner.orders_cli import (
    DEFAULT_DB,
    DbOption,
    JsonOption,
    UserOption,
    _fail,
    _open,
    _print_json,
    _require_staff,
    _run,
    _say,
    _with_user,
)

certificate_app = typer.Typer(add_completion=False, no_args_is_help=True,
                              help="Calibration certificates: verify a file, preview a draft, the worksheet.")


@certificate_app.command("verify")
def verify(file: Annotated[Path, typer.Argument(help="A certificate PDF or DCC XML file.")],
           db: Annotated[str | None, typer.Option("--db", help="The lab's records: check the key and the "
                                                  "issued file, and whether it was amended.")] = None,
           public_key: Annotated[list[str] | None, typer.Option(
               "--public-key", help="A signing key the lab publishes (64 hex digits); repeatable.")] = None,
           as_json: JsonOption = False) -> None:
    """Say whether FILE is exactly what the laboratory signed, or what differs."""
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise _fail(f"{file}: cannot read ({exc.strerror})") from None
    keys = {k.strip().lower() for k in public_key or []}
    for key in keys:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise _fail(ConfigError("command line", "--public-key", f"{key!r} is not 64 hex digits",
                                    "copy the Ed25519 public key the laboratory publishes"))
    verdict = verify_document(content, trusted_keys=keys or None)
    if db is not None and verdict.number:
        verdict = _run(lambda: _verify_with_records(content, verdict, db, keys))
    if as_json:
        _print_json({"valid": verdict.valid, "certificate": verdict.number, "kind": verdict.kind,
                     "facts": verdict.facts, "problems": verdict.problems, "warnings": verdict.warnings})
    else:
        head = "VALID" if verdict.valid else "NOT VALID"
        lines = [f"{head}: {file} ({verdict.kind.upper()}, certificate {verdict.number or 'unknown'})"]
        lines += [f"  ok: {f}" for f in verdict.facts]
        lines += [f"  DIFFERS: {p}" if not p.startswith("  ") else f"    {p.strip()}" for p in verdict.problems]
        lines += [f"  note: {w}" for w in verdict.warnings]
        _say("\n".join(lines))
    raise typer.Exit(0 if verdict.valid else 1)


async def _verify_with_records(content: bytes, first: Verdict, db_path: str, keys: set[str]) -> Verdict:
    database = await _open(db_path)
    try:
        async with database.transaction() as s:
            cert = await s.scalar(select(CertificateNumberRow).where(CertificateNumberRow.number == first.number))
            if cert is None:
                return Verdict(False, first.number, first.kind, problems=[
                    f"certificate {first.number} is not in these records: it was not issued by this laboratory"])
            lab_keys = set((await s.scalars(select(SignatureRow.public_key))).all())
            lab_keys |= {k for k in (await s.scalars(select(UserRow.public_key))).all() if k}
            issued = await s.scalar(select(CertificateDocumentRow).where(
                CertificateDocumentRow.certificate_id == cert.id, CertificateDocumentRow.kind == first.kind))
            replaced_by = await s.scalar(select(CertificateNumberRow.number).where(
                CertificateNumberRow.replaces == cert.number))
    finally:
        await database.close()
    issued_data = None
    if issued is not None:
        from results.certificates.seal import unseal

        manifest = unseal(issued.content).manifest
        issued_data = (manifest or {}).get("data")
    verdict = verify_document(content, trusted_keys=lab_keys | keys, records=issued_data, replaced_by=replaced_by)
    if issued is None:
        verdict.problems.append(f"the records hold no issued {first.kind.upper()} for {first.number}")
        verdict.valid = False
    elif issued.content == content:
        verdict.facts.append("byte for byte the file the laboratory issued")
    return verdict


@certificate_app.command("report")
def report(ref: Annotated[str, typer.Argument(help="Request number, order number or id.")],
           item: Annotated[int, typer.Option("--item", help="The item's position in the order.")],
           user: UserOption, db: DbOption = DEFAULT_DB,
           out: Annotated[Path | None, typer.Option("--out", help="PDF file to write (default: "
                                                    "worksheet-<order>-<item>.pdf).")] = None) -> None:
    """The internal calibration report (worksheet) of an item's latest run, for the reviewers."""
    from results.certificates.pdf import html_to_pdf
    from results.certificates.worksheet import load_worksheet, worksheet_html

    async def work(database: Any, wf: Any, u: UserRow) -> tuple[dict[str, Any], str | None]:
        _require_staff(u, "the internal calibration report")
        async with database.transaction() as s:
            order = await wf._order(s, u, ref)
            row = await wf._item(s, order, item, "--item")
            run_id = await s.scalar(select(ItemRunRow.run_id).where(ItemRunRow.item_id == row.id)
                                    .order_by(ItemRunRow.id.desc()).limit(1))
            if run_id is None:
                raise NotFound(f"item {item} of {ref} has no calibration run yet")
            number = await s.scalar(select(CertificateNumberRow.number).where(CertificateNumberRow.item_id == row.id)
                                    .order_by(CertificateNumberRow.id.desc()).limit(1))
            return await load_worksheet(s, run_id), number

    data, number = _with_user(db, user, work)
    path = out or Path(f"worksheet-{ref}-{item}.pdf")
    _write(path, html_to_pdf(worksheet_html(data, certificate_number=number)))
    _say(f"internal calibration report of run {data['run']['id']} written to {path}")


@certificate_app.command("draft")
def draft(ref: Annotated[str, typer.Argument(help="Request number, order number or id.")],
          item: Annotated[int, typer.Option("--item", help="The item's position in the order.")],
          user: UserOption, db: DbOption = DEFAULT_DB,
          out: Annotated[Path | None, typer.Option("--out", help="PDF file to write.")] = None,
          as_json: JsonOption = False) -> None:
    """The certificate as it will read, marked DRAFT, for checking before the head signs."""
    from datetime import date

    from results.certificates.content import certificate_data
    from results.certificates.document import certificate_html
    from results.certificates.pdf import html_to_pdf

    async def work(database: Any, wf: Any, u: UserRow) -> dict[str, Any]:
        _require_staff(u, "a draft certificate")
        async with database.transaction() as s:
            order = await wf._order(s, u, ref)
            row = await wf._item(s, order, item, "--item")
            cert = await s.scalar(select(CertificateNumberRow).where(CertificateNumberRow.item_id == row.id)
                                  .order_by(CertificateNumberRow.id.desc()).limit(1))
            if cert is None:
                raise NotFound(f"item {item} of {ref} has no certificate number yet (daq orders assign-numbers)")
            return await certificate_data(s, cert, issued=date.today().isoformat())

    data = _with_user(db, user, work)
    if as_json:
        _print_json(data)
        return
    data = data | {"authorisation": None, "verification_code": None}
    path = out or Path(f"draft-{data['number']}.pdf")
    _write(path, html_to_pdf(certificate_html(data)))
    _say(f"draft of certificate {data['number']} written to {path}")


def _write(path: Path, content: bytes) -> None:
    """Whole file or nothing: written beside, then renamed over."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(content)
        partial.replace(path)
    except OSError as exc:
        raise _fail(f"{path}: cannot write ({exc.strerror})") from None


def write_documents(documents: list[tuple[str, bytes]], out: Path) -> list[Path]:
    written = []
    for name, content in documents:
        _write(out / name, content)
        written.append(out / name)
    return written
