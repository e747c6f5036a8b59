"""The equipment register: the lab's reference and check standards, their certificates and status.

A reference standard is only as good as its current certificate: the run gate (`standards_for_run`)
refuses a standard that is unknown, out of service, without a certificate, past its due date or
whose certificate lacks a quantity the bench needs, and hands the procedures a bench whose
certificate tables are the register's, so a budget takes the reference's correction and U from the
certificate as issued (not from a copy typed into a bench file). A recalibration is a new
certificate row; nothing certified is edited, and every row written enters the audit chain.

Register file (TOML); the quantity tables have the bench file's certificate form plus a unit:
```toml
[[equipment]]
category = "reference"            # reference | check
make = "Fluke"
model = "5522A"
serial = "SIM5522A-0001"
interval_months = 12
[[equipment.certificate]]
number = "KAL-2026-0412"
issuing_lab = "National metrology institute"
issued_on = 2026-03-02
due_on = 2027-03-02
[equipment.certificate.dcv]       # one table per quantity, keyed as in the bench file
unit = "V"
k = 2.0
points = [{ at = 1.0, correction = 2e-6, U = 6e-6 }]
```
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from daq.bench import Bench
from daq.certificate import CorrectionTable
from daq.errors import ConfigError
from daq.units import parse_unit
from results.records import audit
from results.records.accounts import Role, roles_of
from results.records.errors import NotFound, Refused
from results.records.models import CertificateValueRow, EquipmentCertificateRow, EquipmentRow, UserRow

CATEGORIES = ("reference", "check")
STATUSES = ("in_service", "out_of_service", "retired")
REGISTER_ROLES = frozenset({Role.QA, Role.TECHNICAL_MANAGER, Role.ADMIN})
DUE_SOON_DAYS = 30
_CERT_FIELDS = ("number", "issuing_lab", "issued_on", "due_on")
_EQUIPMENT_FIELDS = {"category", "make", "model", "serial", "interval_months", "description", "status",
                     "status_note", "certificate"}
# Bench certificate tables in one of these forms are calibration values the register must supply;
# any other table (a bath's characterisation) is the lab's own and stays as the bench file states it.
_CERTIFIED_FORMS = ("points", "ranges", "bands")


@dataclass(frozen=True)
class QuantityValues:
    quantity: str
    unit: str
    table: CorrectionTable


@dataclass(frozen=True)
class CertificateEntry:
    number: str
    issuing_lab: str
    issued_on: date
    due_on: date
    quantities: tuple[QuantityValues, ...]


@dataclass(frozen=True)
class EquipmentEntry:
    category: str
    make: str
    model: str
    serial: str
    interval_months: int | None
    description: str
    status: str
    status_note: str
    certificates: tuple[CertificateEntry, ...]
    where: str  # "equipment[2]": where it came from, for errors found later (against the database)


@dataclass(frozen=True)
class RegisterFile:
    source: str
    equipment: tuple[EquipmentEntry, ...]


@dataclass(frozen=True)
class StandardUsed:
    """A standard a run relied on, as a certificate's traceability statement names it."""

    instrument: str
    make: str
    model: str
    serial: str
    certificate_number: str
    issuing_lab: str
    issued_on: date
    due_on: date


# -- reading a register file -------------------------------------------------------------------

def load_register(path: str | Path) -> RegisterFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), "(file)", f"cannot read: {exc.strerror}",
                          "give the path of a register TOML file") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), "(syntax)", str(exc), "fix the TOML syntax at the line shown") from exc
    return parse_register(data, str(p))


def parse_register(data: dict[str, Any], source: str) -> RegisterFile:
    """Check everything before anything is written: a register is imported whole or not at all."""
    raw = data.get("equipment")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(source, "equipment", "missing or empty",
                          'add [[equipment]] with category, make, model and serial')
    unknown = sorted(set(data) - {"equipment"})
    if unknown:
        raise ConfigError(source, unknown[0], "unknown field", "a register file holds only [[equipment]] tables")
    entries: list[EquipmentEntry] = []
    seen: dict[str, str] = {}
    for i, table in enumerate(raw):
        entry = _parse_equipment(table, source, f"equipment[{i}]")
        if entry.serial in seen:
            raise ConfigError(source, f"{entry.where}.serial", f"serial {entry.serial!r} is also {seen[entry.serial]}",
                              "list each standard once; add a recalibration as another [[equipment.certificate]]")
        seen[entry.serial] = entry.where
        entries.append(entry)
    return RegisterFile(source, tuple(entries))


def _text(table: dict[str, Any], key: str, source: str, where: str, fix: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise ConfigError(source, f"{where}.{key}", f"expected a non-empty string, got {value!r}", fix)
    return value.strip()


def _date(table: dict[str, Any], key: str, source: str, where: str) -> date:
    value = table.get(key)
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    elif isinstance(value, date) and not hasattr(value, "hour"):
        return value
    raise ConfigError(source, f"{where}.{key}", f"expected a date, got {value!r}", f"write {key} = 2026-03-02")


def _choice(table: dict[str, Any], key: str, options: tuple[str, ...], default: str | None, source: str,
            where: str) -> str:
    value = table.get(key, default)
    if value not in options:
        raise ConfigError(source, f"{where}.{key}", f"expected one of {', '.join(options)}, got {value!r}",
                          f'write {key} = "{options[0]}"')
    return str(value)


def _parse_equipment(table: Any, source: str, where: str) -> EquipmentEntry:
    if not isinstance(table, dict):
        raise ConfigError(source, where, "must be a table", "write [[equipment]]")
    unknown = sorted(set(table) - _EQUIPMENT_FIELDS)
    if unknown:
        raise ConfigError(source, f"{where}.{unknown[0]}", "unknown field",
                          f"use one of {', '.join(sorted(_EQUIPMENT_FIELDS))}")
    interval = table.get("interval_months")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0):
        raise ConfigError(source, f"{where}.interval_months", f"expected whole months > 0, got {interval!r}",
                          "write interval_months = 12")
    raw_certs = table.get("certificate", [])
    if not isinstance(raw_certs, list):
        raise ConfigError(source, f"{where}.certificate", "must be an array of tables",
                          f"write [[equipment.certificate]] under {where}")
    certs = tuple(parse_certificate(c, source, f"{where}.certificate[{j}]") for j, c in enumerate(raw_certs))
    numbers = [c.number for c in certs]
    for j, number in enumerate(numbers):
        if number in numbers[:j]:
            raise ConfigError(source, f"{where}.certificate[{j}].number", f"certificate {number!r} is listed twice",
                              "list each certificate once")
    return EquipmentEntry(
        category=_choice(table, "category", CATEGORIES, None, source, where),
        make=_text(table, "make", source, where, 'write make = "Fluke"'),
        model=_text(table, "model", source, where, 'write model = "5522A"'),
        serial=_text(table, "serial", source, where, 'write the serial as a string: serial = "1234"'),
        interval_months=interval,
        description=_text(table, "description", source, where, "write a short description", default=""),
        status=_choice(table, "status", STATUSES, "in_service", source, where),
        status_note=_text(table, "status_note", source, where, "write a short note", default=""),
        certificates=certs,
        where=where,
    )


def parse_certificate(table: Any, source: str, where: str) -> CertificateEntry:
    """One issued certificate: number, issuing lab, dates, and its values per quantity."""
    if not isinstance(table, dict):
        raise ConfigError(source, where, "must be a table", "write [[equipment.certificate]]")
    issued_on = _date(table, "issued_on", source, where)
    due_on = _date(table, "due_on", source, where)
    if due_on < issued_on:
        raise ConfigError(source, f"{where}.due_on", f"{due_on} is before issued_on {issued_on}",
                          "copy both dates from the certificate")
    quantities = []
    for key, value in table.items():
        if key in _CERT_FIELDS:
            continue
        if not isinstance(value, dict):
            raise ConfigError(source, f"{where}.{key}", "unknown field",
                              f"use {', '.join(_CERT_FIELDS)} or a quantity table like [{where}.dcv]")
        quantities.append(_parse_quantity(key, value, source, f"{where}.{key}"))
    return CertificateEntry(
        number=_text(table, "number", source, where, 'write number = "KAL-2026-0412"'),
        issuing_lab=_text(table, "issuing_lab", source, where, "name the laboratory that issued it"),
        issued_on=issued_on, due_on=due_on, quantities=tuple(quantities))


def _parse_quantity(quantity: str, table: dict[str, Any], source: str, where: str) -> QuantityValues:
    unknown = sorted(set(table) - {"unit", "k", "dof", "points"})
    if unknown:
        raise ConfigError(source, f"{where}.{unknown[0]}", "unknown field",
                          "a register certificate states unit, k, dof and points = [{ at, correction, U }]")
    unit = _text(table, "unit", source, where, 'write the unit of at, correction and U: unit = "V"')
    parse_unit(unit, source=source, field=f"{where}.unit")
    if "k" not in table:
        raise ConfigError(source, f"{where}.k", "missing", "copy the coverage factor from the certificate: k = 2.0")
    return QuantityValues(quantity, unit, CorrectionTable.parse(table, source=source, where=where))


# -- writing ------------------------------------------------------------------------------------

def require_register_role(user: UserRow) -> None:
    """Who keeps the register: quality, the technical manager or an administrator."""
    if not roles_of(user) & REGISTER_ROLES:
        raise Refused("R-ROLE", f"{user.username} may not change the equipment register",
                      "the register is kept by qa, technical_manager or admin")


async def _by_serial(s: AsyncSession, serial: str) -> EquipmentRow | None:
    return await s.scalar(select(EquipmentRow).where(EquipmentRow.serial == serial,
                                                     EquipmentRow.category.in_(CATEGORIES)))


async def import_register(s: AsyncSession, register: RegisterFile, actor: str) -> list[EquipmentRow]:
    """Add every standard of the file; one already in the register refuses the whole file."""
    for entry in register.equipment:
        if await s.scalar(select(EquipmentRow.id).where(EquipmentRow.serial == entry.serial)) is not None:
            raise ConfigError(register.source, f"{entry.where}.serial",
                              f"serial {entry.serial!r} is already registered",
                              "remove it from the file; a recalibration is added as a new certificate")
    rows = []
    for entry in register.equipment:
        row = EquipmentRow(category=entry.category, make=entry.make, model=entry.model, serial=entry.serial,
                           description=entry.description, interval_months=entry.interval_months,
                           status=entry.status, status_note=entry.status_note, created_at=audit.utcnow())
        s.add(row)
        await s.flush()
        await audit.append(s, actor=actor, action="add equipment", entity="equipment", entity_id=row.id,
                           detail={"serial": entry.serial, "source": register.source})
        for cert in entry.certificates:
            await _write_certificate(s, row, cert, actor)
        rows.append(row)
    return rows


async def add_certificate(s: AsyncSession, serial: str, cert: CertificateEntry,
                          actor: str) -> EquipmentCertificateRow:
    """A recalibration: a new certificate row beside the old ones, which stay as they were."""
    row = await _by_serial(s, serial)
    if row is None:
        raise NotFound(f"no standard with serial {serial!r} in the register")
    taken = await s.scalar(select(EquipmentCertificateRow.id).where(
        EquipmentCertificateRow.equipment_id == row.id, EquipmentCertificateRow.number == cert.number))
    if taken is not None:
        raise ConfigError("certificate", "number", f"{serial} already has certificate {cert.number!r}",
                          "a recalibration has its own certificate number")
    return await _write_certificate(s, row, cert, actor)


async def _write_certificate(s: AsyncSession, equipment: EquipmentRow, cert: CertificateEntry,
                             actor: str) -> EquipmentCertificateRow:
    row = EquipmentCertificateRow(equipment_id=equipment.id, number=cert.number, issuing_lab=cert.issuing_lab,
                                  issued_on=cert.issued_on.isoformat(), due_on=cert.due_on.isoformat(),
                                  created_at=audit.utcnow())
    s.add(row)
    await s.flush()
    await audit.append(s, actor=actor, action="add certificate", entity="equipment_certificates", entity_id=row.id,
                       detail={"serial": equipment.serial, "number": cert.number})
    for q in cert.quantities:
        dof = None if math.isinf(q.table.dof) else q.table.dof
        for at, correction, expanded_u in q.table.points:
            value = CertificateValueRow(certificate_id=row.id, quantity=q.quantity, at=at, correction=correction,
                                        expanded_u=expanded_u, k=q.table.k, dof=dof, unit=q.unit)
            s.add(value)
            await s.flush()
            await audit.append(s, actor=actor, action="add certificate value", entity="certificate_values",
                               entity_id=value.id, detail={"certificate": cert.number, "quantity": q.quantity})
    return row


async def set_status(s: AsyncSession, serial: str, status: str, note: str, actor: str) -> EquipmentRow:
    """Out of service (damaged, overdue, failed a check) or retired; the note says why."""
    if status not in STATUSES:
        raise ConfigError("status", "status", f"unknown status {status!r}", f"use one of {', '.join(STATUSES)}")
    row = await _by_serial(s, serial)
    if row is None:
        raise NotFound(f"no standard with serial {serial!r} in the register")
    previous = row.status
    row.status, row.status_note = status, note
    await s.flush()
    await audit.append(s, actor=actor, action="set equipment status", entity="equipment", entity_id=row.id,
                       detail={"serial": serial, "from": previous, "to": status, "note": note})
    return row


# -- reading ------------------------------------------------------------------------------------

async def current_certificate(s: AsyncSession, equipment_id: int, on: date) -> EquipmentCertificateRow | None:
    """The latest certificate issued on or before `on` (a later one was not yet in force)."""
    return await s.scalar(
        select(EquipmentCertificateRow)
        .where(EquipmentCertificateRow.equipment_id == equipment_id,
               EquipmentCertificateRow.issued_on <= on.isoformat())
        .order_by(EquipmentCertificateRow.issued_on.desc(), EquipmentCertificateRow.id.desc()).limit(1))


async def register_listing(s: AsyncSession, on: date) -> list[dict[str, Any]]:
    """What QA reviews: each standard with its current certificate, days left and what needs doing."""
    items = []
    for row in (await s.scalars(select(EquipmentRow).where(EquipmentRow.category.in_(CATEGORIES))
                                .order_by(EquipmentRow.serial))).all():
        cert = await current_certificate(s, row.id, on)
        days_left = (date.fromisoformat(cert.due_on) - on).days if cert is not None else None
        flags = []
        if row.status != "in_service":
            flags.append(row.status.replace("_", " "))
        if cert is None:
            flags.append("no certificate")
        elif days_left is not None and days_left < 0:
            flags.append("expired")
        elif days_left is not None and days_left <= DUE_SOON_DAYS:
            flags.append(f"due within {DUE_SOON_DAYS} days")
        items.append({"serial": row.serial, "make": row.make, "model": row.model, "category": row.category,
                      "status": row.status, "status_note": row.status_note,
                      "certificate": cert.number if cert else None, "due_on": cert.due_on if cert else None,
                      "days_left": days_left, "flags": flags})
    return items


async def match_item(s: AsyncSession, serial: str) -> EquipmentRow | None:
    """The register's row for a serial an instrument reported on connect (any category), if any."""
    return await s.scalar(select(EquipmentRow).where(EquipmentRow.serial == serial).order_by(EquipmentRow.id))


async def count_rows(s: AsyncSession) -> dict[str, int]:
    """Rows per register table: how a caller shows that a refused import wrote nothing."""
    out = {}
    for model in (EquipmentRow, EquipmentCertificateRow, CertificateValueRow):
        out[model.__tablename__] = int(await s.scalar(select(func.count()).select_from(model)) or 0)
    return out


# -- the run gate --------------------------------------------------------------------------------

def _certified(table: Any) -> bool:
    return isinstance(table, dict) and any(form in table for form in _CERTIFIED_FORMS)


async def standards_for_run(s: AsyncSession, bench: Bench, on: date) -> tuple[Bench, list[StandardUsed]]:
    """Refuse a run on a standard the register does not vouch for; give the bench the register's values.

    Every instrument with a certificate in the bench file is a standard of the run. The bench
    returned carries, for each certified quantity, the current certificate's points (correction
    and U at k); whether they cover each point is the procedure's check when it is validated.
    """
    instruments = dict(bench.instruments)
    used = []
    for name, entry in bench.instruments.items():
        if not entry.certificate:
            continue
        equipment, cert = await _standard_in_force(s, name, entry.serial, on)
        values = (await s.scalars(select(CertificateValueRow).where(CertificateValueRow.certificate_id == cert.id)
                                  .order_by(CertificateValueRow.quantity, CertificateValueRow.at))).all()
        tables = dict(entry.certificate)
        for quantity, bench_table in entry.certificate.items():
            if not _certified(bench_table):
                continue
            points = [v for v in values if v.quantity == quantity]
            if not points:
                raise Refused("R-REG-QUANTITY", f"{name} ({entry.serial}): certificate {cert.number} states no "
                              f"{quantity!r} values", f"add the certificate that covers {quantity} to the register")
            kept = {k: v for k, v in bench_table.items() if k not in (*_CERTIFIED_FORMS, "k", "dof")}
            tables[quantity] = kept | _point_form(points)
        instruments[name] = dataclasses.replace(entry, certificate=tables)
        used.append(StandardUsed(name, equipment.make, equipment.model, equipment.serial, cert.number,
                                 cert.issuing_lab, date.fromisoformat(cert.issued_on), date.fromisoformat(cert.due_on)))
    return dataclasses.replace(bench, instruments=instruments), used


async def _standard_in_force(s: AsyncSession, name: str, serial: str | None,
                             on: date) -> tuple[EquipmentRow, EquipmentCertificateRow]:
    if not serial:
        raise Refused("R-REG-SERIAL", f"bench instrument {name} has a certificate but no serial",
                      f'write serial = "..." under [instruments.{name}] so the register can be checked')
    equipment = await _by_serial(s, serial)
    if equipment is None:
        raise Refused("R-REG-UNKNOWN", f"{name} ({serial}) is not in the equipment register",
                      "register the standard with its certificate (daq register import)")
    if equipment.status != "in_service":
        note = f": {equipment.status_note}" if equipment.status_note else ""
        raise Refused("R-REG-STATUS", f"{name} ({serial}) is {equipment.status.replace('_', ' ')}{note}",
                      "use a standard in service")
    cert = await current_certificate(s, equipment.id, on)
    if cert is None:
        raise Refused("R-REG-NOCERT", f"{name} ({serial}) has no certificate issued by {on}",
                      "add its calibration certificate to the register")
    if date.fromisoformat(cert.due_on) < on:
        raise Refused("R-REG-EXPIRED", f"{name} ({serial}): certificate {cert.number} was due on {cert.due_on}",
                      "recalibrate the standard and add the new certificate")
    return equipment, cert


def _point_form(values: list[CertificateValueRow]) -> dict[str, Any]:
    table: dict[str, Any] = {"k": values[0].k,
                             "points": [{"at": v.at, "correction": v.correction, "U": v.expanded_u} for v in values]}
    if values[0].dof is not None:
        table["dof"] = values[0].dof
    return table
