"""Writing and reading runs through SQLAlchemy's asyncio engine (SQLite by default, WAL).

Readings are committed in batches as they arrive, so a killed run loses at most the batch
in flight of a point that will be retried anyway; a point's last readings, its stability
record and its result commit in one transaction, so a point is either complete or not.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from results.store.connection import open_engine
from results.store.models import (
    AttemptRow,
    BudgetLineRow,
    PlannedPointRow,
    PointResultRow,
    ReadingRow,
    RunEventRow,
    RunRow,
)
from results.store.schema import upgrade_to_head


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class RunRecord:
    id: int
    status: str
    procedure_name: str
    bench_source: str
    bench_toml: str
    procedure_source: str
    procedure_toml: str
    options: dict[str, Any]
    created_at: str
    completed_points: set[int] = field(default_factory=set)
    planned_points: int = 0
    message: str = ""


class RunStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    async def open(cls, path_or_url: str | Path, *, pooled: bool = True) -> RunStore:
        """Open (and create) the store. Pooled by default: a fresh SQLite connection per batch would
        re-run the pragmas and checkpoint the WAL on every close (4 fsyncs per 64 readings)."""
        engine = open_engine(path_or_url, pooled=pooled)
        try:
            await upgrade_to_head(engine, str(path_or_url))
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- runs -------------------------------------------------------------------------------
    async def create_run(
        self,
        *,
        procedure_name: str,
        bench_name: str,
        bench_source: str,
        bench_toml: str,
        procedure_source: str,
        procedure_toml: str,
        options: dict[str, Any],
        points: list[dict[str, Any]],
        operator: str = "",
    ) -> int:
        async with self.sessions.begin() as s:
            run = RunRow(
                created_at=utcnow(), status="created", procedure_name=procedure_name, bench_name=bench_name,
                bench_source=bench_source, bench_toml=bench_toml, procedure_source=procedure_source,
                procedure_toml=procedure_toml, options_json=json.dumps(options), operator=operator,
            )
            s.add(run)
            await s.flush()
            for i, p in enumerate(points):
                s.add(PlannedPointRow(run_id=run.id, point_index=i, nominal=p["nominal"], unit=p["unit"],
                                      range_=p["range"], label=p.get("label", "")))
            return int(run.id)

    async def load_run(self, run_id: int) -> RunRecord | None:
        async with self.sessions() as s:
            run = await s.get(RunRow, run_id)
            if run is None:
                return None
            done = (await s.scalars(select(PointResultRow.point_index).where(PointResultRow.run_id == run_id))).all()
            planned = await s.scalar(select(func.count()).select_from(PlannedPointRow).where(
                PlannedPointRow.run_id == run_id))
            return RunRecord(
                run.id, run.status, run.procedure_name, run.bench_source, run.bench_toml, run.procedure_source,
                run.procedure_toml, json.loads(run.options_json), run.created_at, set(done), int(planned or 0),
                run.message,
            )

    # -- who runs it ---------------------------------------------------------------------------
    async def claim(self, run_id: int, owner: str, *, stale_after: float = 30.0) -> str | None:
        """Take the run for `owner` (host:pid). Returns None on success, else who holds it.

        A holder is gone when its heartbeat is older than `stale_after` seconds, or when it is a
        process on this host that no longer exists (a killed run is resumable at once). The claim
        is a compare-and-set on the previous owner, so two claimants cannot both win."""
        async with self.sessions.begin() as s:
            row = (await s.execute(select(RunRow.owner, RunRow.heartbeat_at).where(RunRow.id == run_id))).first()
            if row is None:
                return None
            holder, beat = row
            now = time.time()
            if holder and holder != owner and not _gone(holder, beat, now, stale_after):
                return f"{holder}, last heard {now - (beat or now):.0f} s ago"
            condition = RunRow.owner.is_(None) if holder is None else RunRow.owner == holder
            result = await s.execute(update(RunRow).where(RunRow.id == run_id, condition)
                                     .values(owner=owner, heartbeat_at=now))
            return None if _rowcount(result) == 1 else "another process that claimed it at the same moment"

    async def heartbeat(self, run_id: int, owner: str) -> None:
        async with self.sessions.begin() as s:
            await s.execute(update(RunRow).where(RunRow.id == run_id, RunRow.owner == owner)
                            .values(heartbeat_at=time.time()))

    async def release(self, run_id: int, owner: str) -> None:
        async with self.sessions.begin() as s:
            await s.execute(update(RunRow).where(RunRow.id == run_id, RunRow.owner == owner)
                            .values(owner=None, heartbeat_at=None))

    async def set_status(self, run_id: int, status: str, message: str = "") -> None:
        values: dict[str, Any] = {"status": status, "message": message}
        if status in ("completed", "aborted", "failed"):
            values["finished_at"] = utcnow()
        async with self.sessions.begin() as s:
            await s.execute(update(RunRow).where(RunRow.id == run_id).values(**values))

    async def log_event(self, run_id: int, kind: str, message: str) -> None:
        async with self.sessions.begin() as s:
            s.add(RunEventRow(run_id=run_id, at=utcnow(), kind=kind, message=message))

    # -- attempts and readings ----------------------------------------------------------------
    async def begin_attempt(self, run_id: int, point_index: int) -> int:
        """Open a new attempt; any attempt of this run left 'running' by a killed process is closed as interrupted."""
        async with self.sessions.begin() as s:
            await s.execute(
                update(AttemptRow)
                .where(AttemptRow.run_id == run_id, AttemptRow.status == "running")
                .values(status="interrupted")
            )
            last = await s.scalar(select(func.max(AttemptRow.attempt)).where(
                AttemptRow.run_id == run_id, AttemptRow.point_index == point_index))
            attempt = int(last or 0) + 1
            s.add(AttemptRow(run_id=run_id, point_index=point_index, attempt=attempt, started_at=utcnow()))
            return attempt

    async def end_attempt(self, run_id: int, point_index: int, attempt: int, status: str,
                          stability: dict[str, Any] | None = None) -> None:
        """Close an attempt that did not complete (unstable, aborted), keeping its stability evidence."""
        values: dict[str, Any] = {"status": status}
        if stability is not None:
            values["stability_json"] = json.dumps(stability, default=_json_default)
        async with self.sessions.begin() as s:
            await s.execute(update(AttemptRow).where(
                AttemptRow.run_id == run_id, AttemptRow.point_index == point_index, AttemptRow.attempt == attempt,
                AttemptRow.status == "running").values(**values))

    async def add_readings(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            async with self.sessions.begin() as s:
                await s.execute(insert(ReadingRow), rows)

    async def complete_point(
        self,
        *,
        run_id: int,
        point_index: int,
        attempt: int,
        pending_readings: list[dict[str, Any]],
        stability: dict[str, Any],
        results: dict[str, dict[str, Any]],
    ) -> None:
        """The point's last readings, its stability evidence and its results (one per UUT channel,
        each with its budget under result["budget"]["components"]), all or nothing."""
        async with self.sessions.begin() as s:
            if pending_readings:
                await s.execute(insert(ReadingRow), pending_readings)
            await s.execute(update(AttemptRow).where(
                AttemptRow.run_id == run_id, AttemptRow.point_index == point_index, AttemptRow.attempt == attempt
            ).values(status="complete", stability_json=json.dumps(stability, default=_json_default)))
            for channel, result in results.items():
                await self._add_result(s, run_id, point_index, attempt, channel, result)

    @staticmethod
    async def _add_result(s: Any, run_id: int, point_index: int, attempt: int, channel: str,
                          result: dict[str, Any]) -> None:
        row = PointResultRow(
            run_id=run_id, point_index=point_index, attempt=attempt, channel=channel, nominal=result["nominal"],
            unit=result["unit"], ref_mean=result["ref_mean"], uut_mean=result["uut_mean"],
            error=result["error"], correction=result["correction"], u_c=result["u_c"],
            dof_eff=_dof(result["dof_eff"]), k=result["k"], expanded_u=result["U"],
            tolerance=result["tolerance"], decision=result["decision"]["outcome"],
            rule=result["decision"]["rule"], result_json=json.dumps(result, default=_json_default),
            created_at=utcnow(),
        )
        s.add(row)
        await s.flush()
        for pos, line in enumerate(result["budget"]["components"]):
            s.add(BudgetLineRow(
                result_id=row.id, position=pos, name=line["name"], kind=line["kind"],
                distribution=line["distribution"], u=line["u"], sensitivity=line["sensitivity"],
                contribution=line["contribution"], dof=_dof(line["dof"]), note=line.get("note", ""),
            ))
        from results.records.audit import audit_point_result  # the records import the store's models

        await audit_point_result(s, row, actor=f"run {run_id}")

    # -- reading back ---------------------------------------------------------------------------
    async def results(self, run_id: int) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            rows = (await s.scalars(select(PointResultRow).where(PointResultRow.run_id == run_id)
                                    .order_by(PointResultRow.point_index, PointResultRow.id))).all()
            return [json.loads(r.result_json) | {"point_index": r.point_index, "attempt": r.attempt,
                                                 "channel": r.channel} for r in rows]

    async def readings(self, run_id: int, point_index: int | None = None) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            q = select(ReadingRow).where(ReadingRow.run_id == run_id)
            if point_index is not None:
                q = q.where(ReadingRow.point_index == point_index)
            rows = (await s.scalars(q.order_by(ReadingRow.id))).all()
            return [
                {"point_index": r.point_index, "attempt": r.attempt, "channel": r.channel, "seq": r.seq, "t": r.t,
                 "value": r.value, "unit": r.unit, "flag": r.flag}
                for r in rows
            ]

    async def attempts(self, run_id: int) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            rows = (await s.scalars(select(AttemptRow).where(AttemptRow.run_id == run_id)
                                    .order_by(AttemptRow.point_index, AttemptRow.attempt))).all()
            return [{"point_index": r.point_index, "attempt": r.attempt, "status": r.status,
                     "stability": json.loads(r.stability_json) if r.stability_json else None} for r in rows]

    async def events(self, run_id: int) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            rows = (await s.scalars(select(RunEventRow).where(RunEventRow.run_id == run_id)
                                    .order_by(RunEventRow.id))).all()
            return [{"at": r.at, "kind": r.kind, "message": r.message} for r in rows]


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(holder: str, beat: float | None, now: float, stale_after: float) -> bool:
    if beat is None or now - beat > stale_after:
        return True
    host, _, pid = holder.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _dof(x: Any) -> float:
    if isinstance(x, str):
        return math.inf
    return float(x)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, set | tuple):
        return list(obj)
    return str(obj)
