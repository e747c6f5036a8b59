"""A calibration launched from an order item, on the simulated bench: the register gates it, the results
land on the item, and the measured errors agree with the simulator's truth within the stated U."""

from __future__ import annotations

import json

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from procedures.dc_voltage import parse_procedure
from results.records import audit
from results.records.errors import Refused
from results.records.register import import_register, load_register, set_status
from results.records.views import order_detail
from runner.order_run import prepare_item_run
from runner.session import SessionOptions, packaged, run_session
from simulators.bench_server import start_bench
from tests.conftest import BENCH_TOML, PROCEDURE_TOML
from tests.office import ITEM, Office, do_step, happy_path

DMM = ITEM | {"serial": "MY-54321"}


@pytest.fixture
async def office(tmp_path):
    o = await Office.open(str(tmp_path / "lab.sqlite"))
    async with o.db.transaction() as s:
        await import_register(s, load_register(packaged("register-demo.toml")), actor="admin")
    yield o
    await o.close()


async def order_ready_to_run(office: Office) -> str:
    order = (await office.workflow.request(office.users["ext"], service="insitu", items=[DMM],
                                           site="PT Maju Jaya, Jl. Industri 5, Bekasi")).request_number
    for action, user, kw in happy_path("ext", "external", "insitu"):
        if action == "start_calibration":
            return order
        await do_step(office, order, action, user, kw)
    raise AssertionError("no start_calibration step")


ROOM_MONITOR = """
[instruments.room]
driver = "vaisala_hmt330"
resource = "ASRL/dev/ttyUSB0::INSTR"
serial = "SIMHMT330-0001"

[environment]
monitor = "room"
"""


async def launch(office: Office, order: str, *, bench_names_uut_serial: bool = False, room: bool = False):
    """What `daq orders run` does, on a virtual clock, with the bench simulated. The bench file leaves
    the UUT's serial out: the order item supplies it, and the simulated DMM answers with it."""
    text = BENCH_TOML if bench_names_uut_serial else BENCH_TOML.replace('serial = "SIM34465A-0001"\n', "")
    text += ROOM_MONITOR if room else ""
    bench = parse_bench(text, source="bench.toml")
    procedure = parse_procedure(PROCEDURE_TOML, source="p.toml")
    options = SessionOptions(db=office.path, live=False, assume_yes=True, operator_name="analyst")
    checked, item = await prepare_item_run(office.db, office.workflow, office.users["analyst"], order, 1, bench,
                                           procedure, options)
    clock = VirtualClock()
    running = await start_bench(checked, clock)
    try:
        async def link(run_id: int) -> None:
            await office.workflow.link_run(office.users["analyst"], item.id, run_id)

        outcome = await run_session(running.bench, procedure, options, clock=clock, on_created=link)
    finally:
        await running.close()
    return outcome, running


async def test_a_run_launched_from_the_item_measures_the_true_error_and_feeds_the_order(office):
    order = await order_ready_to_run(office)
    outcome, running = await launch(office, order)
    assert outcome.status == "completed"
    for r, p in zip(outcome.results, outcome.procedure.points, strict=True):
        truth = running.world.true_error("dmm", p.nominal, p.range_)
        assert abs(r["error"] - truth) <= r["U"], (p.nominal, r["error"], truth, r["U"])
    # the budget took the calibrator's U from the register's certificate (10 V: U = 1.20e-4 V at k = 2)
    ten = next(r for r in outcome.results if r["nominal"] == 10.0)
    ref_line = next(c for c in ten["budget"]["components"] if "certificate" in c.get("note", ""))
    assert "correction +3e-05 V applied" in ref_line["note"]
    assert ref_line["u"] == pytest.approx(1.20e-4 / 2, rel=1e-9)
    out = await office.workflow.act(office.users["analyst"], order, "submit_results")
    assert out["state"] == "results_submitted" and out["result_versions"] == {1: 1}
    detail = await order_detail(office.workflow, office.users["cs"], order)
    assert detail["items"][0]["runs"] == [outcome.run_id]
    assert detail["calibration_date"] is not None and detail["due_date"] is not None
    async with office.db.transaction() as s:
        from results.records.models import ItemResultRow

        content = json.loads((await s.get(ItemResultRow, 1)).content_json)
        assert content["item"]["serial"] == "MY-54321"
        assert [st["certificate_number"] for st in content["standards"]] == ["KAL-2026-0412"]
        assert len(content["points"]) == len(outcome.results)
        report = await audit.verify(s)
        assert report.ok, report.problems


async def test_an_out_of_service_standard_stops_the_run_before_anything_is_touched(office):
    order = await order_ready_to_run(office)
    async with office.db.transaction() as s:
        await set_status(s, "SIM5522A-0001", "out_of_service", "dropped in transit", actor="admin")
    before = await office.audit_entries()
    with pytest.raises(Refused) as err:
        await launch(office, order)
    assert err.value.rule == "R-REG-STATUS"
    assert await office.audit_entries() == before  # the order did not move, no run was made
    assert (await order_detail(office.workflow, office.users["cs"], order))["state"] == "assignment_validated"


async def test_a_bench_naming_another_serial_for_the_uut_is_refused(office):
    order = await order_ready_to_run(office)
    with pytest.raises(Refused, match="R-SERIAL"):
        await launch(office, order, bench_names_uut_serial=True)


async def test_a_plain_run_on_a_database_with_a_register_is_gated_by_it_too(office):
    """`daq run` without an order: the register still refuses a standard it would not accept."""
    async with office.db.transaction() as s:
        await set_status(s, "SIM5522A-0001", "out_of_service", "overdue for its intermediate check", actor="admin")
    bench = parse_bench(BENCH_TOML, source="bench.toml")
    procedure = parse_procedure(PROCEDURE_TOML, source="p.toml")
    with pytest.raises(Refused, match="R-REG-STATUS"):
        await run_session(bench, procedure, SessionOptions(db=office.path, live=False, assume_yes=True, simulate=True),
                          clock=VirtualClock())
    async with office.db.transaction() as s:
        from sqlalchemy import func, select

        from results.store.models import RunRow

        assert await s.scalar(select(func.count(RunRow.id))) == 0
