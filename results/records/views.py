"""What each user may see of the orders, and the supervisors' monthly reports.

A customer sees their own organisation's orders only; staff see all. An order's view says what
the viewer can do next, so the CLI and the API never offer a step the workflow would refuse for
role or state.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from results.records.accounts import Role, roles_of
from results.records.calendar import ServiceType, TurnaroundCase, TurnaroundReport, is_overdue, monthly_turnaround
from results.records.lifecycle import State, allowed_actions, transition_for
from results.records.models import (
    CertificateNumberRow,
    ItemResultRow,
    ItemRunRow,
    OrderEventRow,
    OrderItemRow,
    OrderRow,
    OrganisationRow,
    SurveyResponseRow,
    UserRow,
)
from results.records.survey import SurveyAnswers, SurveyIndex, survey_index
from results.records.workflow import Workflow


async def list_orders(workflow: Workflow, user: UserRow) -> list[dict[str, Any]]:
    async with workflow.db.transaction() as s:
        user = await workflow._fresh(s, user)
        query = select(OrderRow, OrganisationRow.name).join(OrganisationRow,
                                                            OrganisationRow.id == OrderRow.organisation_id)
        if Role.CUSTOMER in roles_of(user):
            query = query.where(OrderRow.organisation_id == user.organisation_id)
        rows = (await s.execute(query.order_by(OrderRow.id))).all()
        today = workflow.today()
        return [_summary(o, name, today) for o, name in rows]


def _summary(order: OrderRow, organisation: str, today: date) -> dict[str, Any]:
    due = date.fromisoformat(order.due_date) if order.due_date else None
    released = date.fromisoformat(order.released_date) if order.released_date else None
    return {"id": order.id, "request_number": order.request_number, "order_number": order.order_number,
            "organisation": organisation, "service": order.service, "state": order.state, "version": order.version,
            "priority": order.priority, "due_date": order.due_date, "released_date": order.released_date,
            "overdue": bool(due and is_overdue(due, today, released)), "late": order.late}


async def order_detail(workflow: Workflow, user: UserRow, ref: str | int) -> dict[str, Any]:
    async with workflow.db.transaction() as s:
        user = await workflow._fresh(s, user)
        order = await workflow._order(s, user, ref)
        org = await s.get(OrganisationRow, order.organisation_id)
        assert org is not None
        out = _summary(order, org.name, workflow.today()) | {
            "customer_kind": org.kind, "site": order.site, "scheduled_for": order.scheduled_for,
            "calibration_date": order.calibration_date, "received_date": order.received_date,
            "days_off": order.days_off}
        items = (await s.scalars(select(OrderItemRow).where(OrderItemRow.order_id == order.id)
                                 .order_by(OrderItemRow.position))).all()
        out["items"] = [await _item_view(s, i) for i in items]
        events = (await s.execute(select(OrderEventRow, UserRow.username).join(UserRow, UserRow.id ==
                                                                               OrderEventRow.actor_id)
                                  .where(OrderEventRow.order_id == order.id).order_by(OrderEventRow.id))).all()
        out["history"] = [{"action": e.action, "from": e.from_state, "to": e.to_state, "by": name, "role": e.role,
                           "at": e.at, "reason": e.reason, "details": json.loads(e.payload_json)}
                          for e, name in events]
        mine = roles_of(user)
        out["next_steps"] = [a for a in allowed_actions(State(order.state), org.kind, order.service)
                             if (t := transition_for(a, org.kind, order.service)) and mine & t.roles]
        return out


async def _item_view(s: AsyncSession, item: OrderItemRow) -> dict[str, Any]:
    runs = (await s.scalars(select(ItemRunRow.run_id).where(ItemRunRow.item_id == item.id))).all()
    versions = (await s.execute(select(ItemResultRow.version, ItemResultRow.id, ItemResultRow.supersedes_id,
                                       ItemResultRow.reason).where(ItemResultRow.item_id == item.id)
                                .order_by(ItemResultRow.version))).all()
    certs = (await s.execute(select(CertificateNumberRow.number, CertificateNumberRow.replaces)
                             .where(CertificateNumberRow.item_id == item.id).order_by(CertificateNumberRow.id))).all()
    return {"position": item.position, "make": item.make, "model": item.model, "serial": item.serial,
            "parameter": item.parameter, "scope": item.scope, "requested_points": item.requested_points,
            "tariff": item.tariff_code, "price": item.price, "sample_id": item.sample_id, "runs": list(runs),
            "result_versions": [{"version": v, "id": i, "supersedes": sup, "reason": r} for v, i, sup, r in versions],
            "certificates": [{"number": n, "replaces": rep} for n, rep in certs]}


async def turnaround(workflow: Workflow, year: int, month: int) -> TurnaroundReport:
    """Against the promise: in-situ from the calibration date, ex-situ from receipt; done = released."""
    async with workflow.db.transaction() as s:
        calendar = await workflow.calendar(s)
        rows = (await s.scalars(select(OrderRow).where(OrderRow.due_date.is_not(None)))).all()
        cases = []
        for o in rows:
            start = o.calibration_date if o.service == ServiceType.INSITU.value else o.received_date
            assert start is not None and o.due_date is not None
            cases.append(TurnaroundCase(o.order_number or o.request_number, ServiceType(o.service),
                                        date.fromisoformat(start), date.fromisoformat(o.due_date),
                                        date.fromisoformat(o.released_date) if o.released_date else None))
        return monthly_turnaround(cases, year, month, calendar, workflow.today())


async def survey_results(workflow: Workflow, *, year: int, service: str | None = None,
                         month: int | None = None) -> SurveyIndex:
    """The satisfaction index of one period (a year, or a month of it), for one service or all."""
    async with workflow.db.transaction() as s:
        rows = (await s.scalars(select(SurveyResponseRow))).all()
        answers = []
        for r in rows:
            at = date.fromisoformat(r.submitted_at[:10])
            if at.year != year or (month is not None and at.month != month):
                continue
            if service is not None and r.service != service:
                continue
            answers.append(SurveyAnswers.parse(json.loads(r.answers_json), f"survey response {r.id}"))
        return survey_index(answers)
