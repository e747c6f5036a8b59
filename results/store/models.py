"""SQLAlchemy 2 models of a calibration run.

Rows are inserted, never edited in place, except for status columns that record where a
run or an attempt stands. A point can be attempted several times (a run killed mid-point is
retried on resume); readings belong to an attempt, and exactly one attempt per point owns
the point's result. Uniqueness constraints make "written twice" impossible, not just unlikely.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[str] = mapped_column(String(40))
    finished_at: Mapped[str | None] = mapped_column(String(40), default=None)
    status: Mapped[str] = mapped_column(String(20), default="created")
    message: Mapped[str] = mapped_column(Text, default="")
    procedure_name: Mapped[str] = mapped_column(String(200))
    bench_name: Mapped[str] = mapped_column(String(200))
    bench_source: Mapped[str] = mapped_column(Text)
    bench_toml: Mapped[str] = mapped_column(Text)
    procedure_source: Mapped[str] = mapped_column(Text)
    procedure_toml: Mapped[str] = mapped_column(Text)
    options_json: Mapped[str] = mapped_column(Text, default="{}")
    operator: Mapped[str] = mapped_column(String(200), default="")
    owner: Mapped[str | None] = mapped_column(String(200), default=None)
    """host:pid of the process running it now; two processes must never drive one run's instruments."""
    heartbeat_at: Mapped[float | None] = mapped_column(Float, default=None)


class PlannedPointRow(Base):
    __tablename__ = "points"
    __table_args__ = (UniqueConstraint("run_id", "point_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    point_index: Mapped[int] = mapped_column(Integer)
    nominal: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20))
    range_: Mapped[float] = mapped_column("range", Float)
    label: Mapped[str] = mapped_column(String(100), default="")


class AttemptRow(Base):
    __tablename__ = "point_attempts"
    __table_args__ = (UniqueConstraint("run_id", "point_index", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    point_index: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="running")
    stability_json: Mapped[str | None] = mapped_column(Text, default=None)


class ReadingRow(Base):
    __tablename__ = "readings"
    __table_args__ = (UniqueConstraint("run_id", "point_index", "attempt", "channel", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    point_index: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    t: Mapped[float] = mapped_column(Float)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20))
    flag: Mapped[bool | None] = mapped_column(Boolean, default=None)
    """The instrument's own status at that sample (e.g. the calibrator's SETTLED bit), if any."""


class PointResultRow(Base):
    """One UUT channel's result at one point ("" when the procedure has a single UUT)."""

    __tablename__ = "point_results"
    __table_args__ = (UniqueConstraint("run_id", "point_index", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(100), default="")
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    point_index: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    nominal: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20))
    ref_mean: Mapped[float] = mapped_column(Float)
    uut_mean: Mapped[float] = mapped_column(Float)
    error: Mapped[float] = mapped_column(Float)
    correction: Mapped[float] = mapped_column(Float)
    u_c: Mapped[float] = mapped_column(Float)
    dof_eff: Mapped[float] = mapped_column(Float)
    k: Mapped[float] = mapped_column(Float)
    expanded_u: Mapped[float] = mapped_column(Float)
    tolerance: Mapped[float] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(20))
    rule: Mapped[str] = mapped_column(String(200))
    result_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(40))


class BudgetLineRow(Base):
    __tablename__ = "budget_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("point_results.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(2))
    distribution: Mapped[str] = mapped_column(String(20))
    u: Mapped[float] = mapped_column(Float)
    sensitivity: Mapped[float] = mapped_column(Float)
    contribution: Mapped[float] = mapped_column(Float)
    dof: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")


class RunEventRow(Base):
    """The run's journal: prompts and answers, pauses, aborts, safe-state actions."""

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    at: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
