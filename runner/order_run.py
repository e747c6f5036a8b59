"""A calibration run launched from an order item: the records decide whether it may start.

Before any instrument is touched: the workflow checks the step (the assigned analyst, a verified
payment for an external customer, the order's state); the equipment register checks every
reference standard (in service, certificate current, covering the quantity) and replaces the
bench file's certificate tables with the register's; the UUT must report the item's serial on
connect. The run then records what it was for, so its results, and a resumed run, stay tied
to the item and to the standards' certificates.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from typing import Any

from daq.bench import Bench
from daq.errors import ConfigError
from procedures.base import Procedure
from results.records.database import RecordsDB
from results.records.errors import Refused
from results.records.models import OrderItemRow, UserRow
from results.records.register import standards_for_run
from results.records.workflow import Workflow
from runner.engine import validate_before_start
from runner.session import SessionOptions, SessionOutcome, run_session


def uut_instrument(procedure: Procedure, uut: str | None, bench: Bench) -> str:
    """The bench instrument that is the order item: named with --uut, or the procedure's single UUT role."""
    if uut is not None:
        if uut not in bench.instruments:
            raise ConfigError(bench.source, "--uut", f"no instrument {uut!r} in the bench",
                              f"one of {', '.join(bench.instruments)}")
        return uut
    role = getattr(procedure, "uut_role", None)
    if not isinstance(role, str):
        raise ConfigError("--uut", "--uut", "this procedure calibrates several instruments at once",
                          "name the bench instrument that is this order item with --uut")
    return role


async def prepare_item_run(db: RecordsDB, workflow: Workflow, user: UserRow, order_ref: str, item_position: int,
                           bench: Bench, procedure: Procedure, options: SessionOptions, *,
                           uut: str | None = None, on: date | None = None) -> tuple[Bench, OrderItemRow]:
    """Every check that can refuse the run, then the start_calibration step (which commits)."""
    on = on or workflow.today()
    async with db.transaction() as s:
        checked_bench, standards = await standards_for_run(s, bench, on)
        order = await workflow._order(s, user, order_ref)
        item = await workflow._item(s, order, item_position, "--item")
    name = uut_instrument(procedure, uut, bench)
    stated = bench.instruments[name].serial
    if stated is not None and stated != item.serial:
        raise Refused("R-SERIAL", f"the bench's {name} is serial {stated}, the order item is {item.serial}",
                      "connect the item of this order, or choose the right order item")
    options.certificates = {n: e.certificate for n, e in checked_bench.instruments.items()
                            if e.certificate != bench.instruments[n].certificate}
    options.serials = {name: item.serial}
    options.context = {"order_item": {"order": order_ref, "item": item.position, "item_id": item.id,
                                      "serial": item.serial, "instrument": name},
                       "standards": [json.loads(json.dumps(dataclasses.asdict(st), default=str))
                                     for st in standards]}
    final = options.apply_to(bench)
    validate_before_start(final, procedure)
    await workflow.act(user, order_ref, "start_calibration", data={"item": item.position})
    return final, item


async def run_order_item(db_path: str, user: UserRow, order_ref: str, item_position: int, bench: Bench,
                         procedure: Procedure, options: SessionOptions, *, uut: str | None = None,
                         **session_kw: Any) -> SessionOutcome:
    db = await RecordsDB.open(db_path)
    try:
        workflow = Workflow(db)
        _, item = await prepare_item_run(db, workflow, user, order_ref, item_position, bench, procedure, options,
                                         uut=uut)

        async def link(run_id: int) -> None:
            await workflow.link_run(user, item.id, run_id)

        return await run_session(bench, procedure, options, on_created=link, **session_kw)
    finally:
        await db.close()

