"""Due dates, lateness and compensation as the workflow records them, across holidays and a year end."""

from __future__ import annotations

from datetime import date

import pytest

from results.records.calendar import Holiday
from results.records.views import list_orders, order_detail, turnaround
from tests.office import ITEM, Office, do_step, happy_path

HOLIDAYS = [Holiday(date(2026, 12, 25), "Christmas Day"), Holiday(date(2026, 12, 24), "Cuti bersama"),
            Holiday(date(2027, 1, 1), "New Year's Day")]


@pytest.fixture
async def office(tmp_path):
    o = await Office.open(str(tmp_path / "lab.sqlite"), holidays=HOLIDAYS)
    yield o
    await o.close()


async def walk(office: Office, order: str, customer: str, kind: str, service: str, stop: str,
               dates: dict[str, date]) -> None:
    for action, user, kw in happy_path(customer, kind, service):
        if action == stop:
            return
        if action in dates:
            office.clock.move_to(dates[action])
        if action == "propose_schedule" and "schedule" in dates:
            kw = {"data": {"date": dates["schedule"].isoformat()}}
        await do_step(office, order, action, user, kw)


async def test_ex_situ_due_date_counts_30_working_days_from_receipt_across_holidays_and_new_year(office):
    order = (await office.workflow.request(office.users["int"], service="exsitu", items=[ITEM])).request_number
    await walk(office, order, "int", "internal", "exsitu", "assign_analyst", {"receive_items": date(2026, 12, 10)})
    detail = await order_detail(office.workflow, office.users["cs"], order)
    # Dec 11..31: 15 weekdays less 24th, 25th = 13; Jan 2027: 1st is a holiday; 17 more working days
    # from Jan 4 -> Jan 4..8 (5), 11..15 (10), 18..22 (15), 25, 26 -> the 30th working day is Tue 26 Jan 2027
    assert detail["received_date"] == "2026-12-10"
    assert detail["due_date"] == "2027-01-26"


async def test_in_situ_due_date_counts_22_working_days_from_the_calibration_date(office):
    order = (await office.workflow.request(office.users["ext"], service="insitu", items=[ITEM],
                                           site="Jl. Industri 5")).request_number
    await walk(office, order, "ext", "external", "insitu", "__run", {"start_calibration": date(2026, 12, 8)})
    detail = await order_detail(office.workflow, office.users["cs"], order)
    # Dec 9..31 less 24, 25: 15 working days; Jan 4..8 -> 20; Jan 11, 12 -> 22
    assert detail["calibration_date"] == "2026-12-08" and detail["due_date"] == "2027-01-12"


async def test_a_late_order_is_flagged_and_earns_priority_and_a_day_off_the_next_promise(office):
    wf, u = office.workflow, office.users
    order = (await wf.request(u["int"], service="insitu", items=[ITEM], site="Lab B")).request_number
    await walk(office, order, "int", "internal", "insitu", "release", {"start_calibration": date(2026, 12, 8)})
    office.clock.move_to(date(2027, 1, 13))  # due 12 January
    assert (await order_detail(wf, u["cs"], order))["overdue"] is True
    out = await wf.act(u["cs"], order, "release")
    assert out["late"] is True and out["due"] == "2027-01-12"
    nxt = (await wf.request(u["int"], service="insitu", items=[ITEM | {"serial": "MY-0002"}],
                            site="Lab B")).request_number
    detail = await order_detail(wf, u["cs"], nxt)
    assert detail["priority"] is True and detail["days_off"] == 1
    await walk(office, nxt, "int", "internal", "insitu", "__run",
               {"schedule": date(2027, 1, 14), "start_calibration": date(2027, 1, 14)})
    # 21 working days after Thu 14 Jan 2027: Jan 15 (1), 18..22 (6), 25..29 (11), Feb 1..5 (16), 8..12 (21)
    assert (await order_detail(wf, u["cs"], nxt))["due_date"] == "2027-02-12"
    third = (await wf.request(u["int"], service="insitu", items=[ITEM | {"serial": "MY-0003"}],
                              site="Lab B")).request_number
    assert (await order_detail(wf, u["cs"], third))["priority"] is False  # the compensation is used once


async def test_the_monthly_report_counts_on_time_and_late_per_service(office):
    wf, u = office.workflow, office.users
    on_time = (await wf.request(u["int"], service="exsitu", items=[ITEM])).request_number
    await walk(office, on_time, "int", "internal", "exsitu", "release", {"receive_items": date(2026, 12, 10)})
    office.clock.move_to(date(2027, 1, 20))
    await wf.act(u["cs"], on_time, "release")
    late = (await wf.request(u["int"], service="insitu", items=[ITEM | {"serial": "MY-0009"}],
                             site="Lab B")).request_number
    office.clock.move_to(date(2026, 12, 7))
    await walk(office, late, "int", "internal", "insitu", "release", {"start_calibration": date(2026, 12, 8)})
    office.clock.move_to(date(2027, 1, 14))
    await wf.act(u["cs"], late, "release")
    report = await turnaround(wf, 2027, 1)
    rows = {r["service"]: r for r in report.rows()}
    assert rows["exsitu"]["completed"] == 1 and rows["exsitu"]["on_time"] == 1
    assert rows["insitu"]["completed"] == 1 and rows["insitu"]["on_time"] == 0
    # Dec 8 -> Jan 14: December 9..31 has 15 working days (24, 25 off), January 4..14 has 9: 24
    assert rows["insitu"]["worst_working_days"] == 24 and rows["insitu"]["on_time_pct"] == 0.0
    assert rows["exsitu"]["on_time_pct"] == 100.0
    assert "insitu" in report.render_text()
    assert [o["late"] for o in await list_orders(wf, u["cs"])] == [False, True]
