"""The audit trail: an append-only chain of hashes over every state change and stored result.

Each entry records who did what to which record, the SHA-256 of the record as written, and a
hash that covers the previous entry's hash, so an entry cannot be edited, removed or reordered
without breaking the chain. `verify` also recomputes every audited record from the row as it is
now: an edited result, a deleted order or a row slipped in behind the program's back is named.
(A person with write access who rewrites the records *and* recomputes the whole chain is not
caught by a chain alone; the head's hash printed by `daq audit verify` can be kept elsewhere.)

Writers serialise on the single `audit_head` row: updating it first takes the row lock on
PostgreSQL and the write lock on SQLite, so two processes never build on the same entry.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from results.records.models import AuditEntryRow, AuditHeadRow
from results.store.models import AttemptRow, Base, BudgetLineRow, PointResultRow, ReadingRow

GENESIS = "0" * 64

# Tables whose every row must be covered by an audit entry. Readings are covered through the
# result of the attempt they belong to (its record hash includes a digest of them).
AUDITED_TABLES = (
    "point_results", "organisations", "users", "tariff_lines", "holidays", "orders", "order_items",
    "order_events", "billings", "payments", "payment_checks", "schedules", "work_orders", "sample_movements",
    "assignments", "item_runs", "item_results", "reviews", "certificate_numbers", "signatures",
    "survey_responses", "certificate_downloads", "receipt_acknowledgements", "complaints", "compensations",
    "equipment", "equipment_certificates", "certificate_values",
)
# Columns left out of a record's hash because they change without changing what the record says.
_VOLATILE = {"users": {"password_hash"}}


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)


def _plain(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    return str(obj)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _table(name: str) -> Table:
    table = Base.metadata.tables[name]
    assert isinstance(table, Table)
    return table


def _row_dict(table: Table, row: Any) -> dict[str, Any]:
    skip = _VOLATILE.get(table.name, set())
    out = {}
    for column in table.columns:
        if column.name in skip:
            continue
        value = row._mapping[column] if hasattr(row, "_mapping") else getattr(row, column.key)
        if isinstance(value, bytes):  # a stored document: its hash stands for it
            value = "sha256:" + hashlib.sha256(value).hexdigest()
        out[column.name] = repr(value) if isinstance(value, float) and not math.isfinite(value) else value
    return out


async def record_content(session: AsyncSession, entity: str, entity_id: str) -> dict[str, Any] | None:
    """What an audited record says now, as hashed; None if the row is gone."""
    table = _table(entity)
    pk = list(table.primary_key.columns)[0]
    key: Any = entity_id if pk.type.python_type is str else int(entity_id)
    row = (await session.execute(select(table).where(pk == key))).first()
    if row is None:
        return None
    content = _row_dict(table, row)
    extend = _EXTENSIONS.get(entity)
    if extend is not None:
        content = await extend(session, content)
    return content


async def _point_result_content(session: AsyncSession, content: dict[str, Any]) -> dict[str, Any]:
    """A point result stands on its budget lines and on every reading of its attempt."""
    lines = (await session.execute(select(_table("budget_lines")).where(BudgetLineRow.result_id == content["id"])
                                   .order_by(BudgetLineRow.position))).all()
    readings = (await session.execute(
        select(ReadingRow.channel, ReadingRow.seq, ReadingRow.t, ReadingRow.value, ReadingRow.unit, ReadingRow.flag)
        .where(ReadingRow.run_id == content["run_id"], ReadingRow.point_index == content["point_index"],
               ReadingRow.attempt == content["attempt"]).order_by(ReadingRow.channel, ReadingRow.seq))).all()
    stability = await session.scalar(select(AttemptRow.stability_json).where(
        AttemptRow.run_id == content["run_id"], AttemptRow.point_index == content["point_index"],
        AttemptRow.attempt == content["attempt"]))
    digest = sha256(canonical([list(r) for r in readings]))
    return content | {"budget_lines": [_row_dict(_table("budget_lines"), r) for r in lines],
                      "readings_sha256": digest, "readings": len(readings), "stability_json": stability}


_EXTENSIONS: dict[str, Callable[[AsyncSession, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "point_results": _point_result_content,
}


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    return sha256(prev_hash + canonical(entry))


def _entry_fields(row: AuditEntryRow) -> dict[str, Any]:
    return {"seq": row.seq, "at": row.at, "actor": row.actor, "action": row.action, "entity": row.entity,
            "entity_id": row.entity_id, "record_sha256": row.record_sha256, "detail_json": row.detail_json}


async def append(session: AsyncSession, *, actor: str, action: str, entity: str, entity_id: Any,
                 detail: dict[str, Any] | None = None) -> AuditEntryRow:
    """Log a record just written (flushed) in this transaction; the chain grows by one entry."""
    await session.flush()
    content = await record_content(session, entity, str(entity_id))
    if content is None:
        raise RuntimeError(f"audit: {entity} {entity_id} is not in this transaction")
    head = (await session.execute(
        update(AuditHeadRow).where(AuditHeadRow.id == 1).values(seq=AuditHeadRow.seq + 1)
        .returning(AuditHeadRow.seq, AuditHeadRow.hash))).first()
    if head is None:
        await session.execute(insert(AuditHeadRow).values(id=1, seq=1, hash=GENESIS))
        seq, prev = 1, GENESIS
    else:
        seq, prev = head[0], head[1]
    row = AuditEntryRow(seq=seq, at=utcnow(), actor=actor, action=action, entity=entity, entity_id=str(entity_id),
                        record_sha256=sha256(canonical(content)), detail_json=canonical(detail or {}),
                        prev_hash=prev, hash="")
    row.hash = entry_hash(prev, _entry_fields(row))
    session.add(row)
    await session.execute(update(AuditHeadRow).where(AuditHeadRow.id == 1).values(hash=row.hash))
    return row


@dataclass
class AuditReport:
    entries: int = 0
    head_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(session: AsyncSession) -> AuditReport:
    """Walk the chain from the start, then hold every audited row against its last entry."""
    report = AuditReport()
    prev = GENESIS
    expected_seq = 1
    latest: dict[tuple[str, str], AuditEntryRow] = {}
    result = await session.stream_scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq))
    async for row in result:
        if row.seq != expected_seq:
            report.problems.append(f"audit entries {expected_seq}..{row.seq - 1} are missing (deleted)")
        if row.prev_hash != prev:
            report.problems.append(f"audit entry {row.seq}: does not follow entry {row.seq - 1} (chain broken)")
        if entry_hash(row.prev_hash, _entry_fields(row)) != row.hash:
            report.problems.append(f"audit entry {row.seq}: edited (its hash does not match its content)")
        prev = row.hash
        expected_seq = row.seq + 1
        report.entries += 1
        latest[(row.entity, row.entity_id)] = row
    head = (await session.execute(select(AuditHeadRow.seq, AuditHeadRow.hash))).first()
    report.head_hash = prev
    if head is not None and (head[0] != report.entries or head[1] != prev):
        report.problems.append(f"the chain ends at entry {report.entries} but its head says {head[0]}: "
                               "entries were removed from the end")
    for (entity, entity_id), row in latest.items():
        content = await record_content(session, entity, entity_id)
        if content is None:
            report.problems.append(f"{entity} {entity_id}: deleted (last audited as entry {row.seq}, {row.action})")
        elif sha256(canonical(content)) != row.record_sha256:
            report.problems.append(f"{entity} {entity_id}: changed since audit entry {row.seq} ({row.action})")
    for name in AUDITED_TABLES:
        table = _table(name)
        pk = list(table.primary_key.columns)[0]
        for (key,) in (await session.execute(select(pk))).all():
            if (name, str(key)) not in latest:
                report.problems.append(f"{name} {key}: written without an audit entry")
    return report


async def audit_point_result(session: AsyncSession, row: PointResultRow, actor: str) -> None:
    """The run store's hook: every stored result enters the chain with its budget and readings."""
    await append(session, actor=actor, action="store result", entity="point_results", entity_id=row.id,
                 detail={"run": row.run_id, "point": row.point_index, "channel": row.channel})
