"""Moving an order through its life: every step checked, recorded and audited in one transaction.

`Workflow.act(user, order, action, ...)` is the only way an order changes state, for the CLI, the
REST API and the runner alike. In order, it checks: the account (R-ACTIVE), that the user may see
the order (R-ORG), that the step exists for this kind of order (R-KIND), the user's role (R-ROLE),
the order's state (R-STATE), the step's own preconditions (payment, survey, segregation of
duties, ...), and only then validates the step's data and writes. A refusal names its rule and
writes nothing; a malformed field is a `ConfigError` naming the field and writes nothing.

The order row is locked for the transaction (FOR UPDATE on PostgreSQL, the write lock taken at
BEGIN on SQLite), so of two clients racing for the same step exactly one wins; the other then
sees the new state and is refused by R-STATE.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from daq.errors import ConfigError
from results.records import audit, signing
from results.records.accounts import Role, roles_of
from results.records.calendar import ServiceType, WorkingCalendar, due_date
from results.records.database import RecordsDB
from results.records.errors import NotFound, Refused
from results.records.lifecycle import ACTIONS, RULES, State, Transition, allowed_actions, transition_for
from results.records.models import (
    AssignmentRow,
    BillingRow,
    CertificateDocumentRow,
    CertificateNumberRow,
    CompensationRow,
    CounterRow,
    DownloadRow,
    EquipmentRow,
    HolidayRow,
    ItemResultRow,
    ItemRunRow,
    OrderEventRow,
    OrderItemRow,
    OrderRow,
    OrganisationRow,
    PaymentCheckRow,
    PaymentRow,
    ReceiptAcknowledgementRow,
    ReviewRow,
    SampleMovementRow,
    ScheduleRow,
    SignatureRow,
    SurveyResponseRow,
    TariffLineRow,
    UserRow,
    WorkOrderRow,
)
from results.records.survey import SurveyAnswers
from results.store.models import PointResultRow, RunRow

ITEM_FIELDS = ("make", "model", "serial", "parameter")


def _iso(d: date) -> str:
    return d.isoformat()


class Workflow:
    def __init__(self, db: RecordsDB, *, now: Callable[[], datetime] | None = None) -> None:
        """`now`: the clock the office runs on; tests give a fixed one to walk through months of work."""
        self.db = db
        self.now = now or (lambda: datetime.now(UTC))

    def stamp(self) -> str:
        return self.now().isoformat(timespec="seconds")

    def today(self) -> date:
        return self.now().date()

    # -- requests ----------------------------------------------------------------------------------
    async def request(self, user: UserRow, *, service: str, items: list[dict[str, Any]], site: str = "",
                      organisation: str | None = None, source: str = "request") -> OrderRow:
        """A customer registers a request for their own organisation; customer service may enter one for a
        customer (a walk-in) by naming the organisation."""
        async with self.db.transaction() as s:
            user = await self._fresh(s, user)
            roles = roles_of(user)
            if Role.CUSTOMER in roles:
                org = await s.get(OrganisationRow, user.organisation_id)
                if organisation is not None and org is not None and organisation != org.name:
                    raise Refused("R-ORG", f"{user.username} orders for {org.name}, not {organisation}",
                                  "a customer orders for their own organisation")
            elif Role.CUSTOMER_SERVICE in roles:
                if organisation is None:
                    raise ConfigError(source, "organisation", "customer service must name the customer",
                                      "give the organisation the order is for")
                org = await s.scalar(select(OrganisationRow).where(OrganisationRow.name == organisation))
                if org is None:
                    raise ConfigError(source, "organisation", f"no organisation {organisation!r}",
                                      "add it first, or check the spelling")
            else:
                raise Refused("R-ROLE", f"{user.username} is neither a customer nor customer service",
                              "requests are registered by the customer or by customer service")
            assert org is not None
            try:
                kind = ServiceType(service)
            except ValueError:
                raise ConfigError(source, "service", f"expected insitu or exsitu, got {service!r}",
                                  "insitu: at the customer's site; exsitu: the item comes to the lab") from None
            if kind is ServiceType.INSITU and not site.strip():
                raise ConfigError(source, "site", "an in-situ order needs the customer's site",
                                  "give the address where the calibration is done")
            checked = await self._check_items(s, items, org, source)
            order = OrderRow(request_number=await self._next_number(s, "REQ"), organisation_id=org.id,
                             requested_by=user.id, service=kind.value, site=site, state=State.REQUESTED.value,
                             created_at=self.stamp())
            s.add(order)
            await s.flush()
            await audit.append(s, actor=user.username, action="request order", entity="orders", entity_id=order.id)
            for pos, item in enumerate(checked, start=1):
                row = OrderItemRow(order_id=order.id, position=pos, **item)
                s.add(row)
                await s.flush()
                await audit.append(s, actor=user.username, action="add item", entity="order_items", entity_id=row.id)
                await self._register_customer_item(s, user, org, item)
            comp = await s.scalar(select(CompensationRow).where(
                CompensationRow.organisation_id == org.id, CompensationRow.used_by_order_id.is_(None))
                .order_by(CompensationRow.id).limit(1))
            if comp is not None:  # seed 000: priority; seed 002: one working day off the promise
                comp.used_by_order_id = order.id
                order.priority, order.days_off = True, 1
                await audit.append(s, actor=user.username, action="use compensation", entity="compensations",
                                   entity_id=comp.id)
            await self._event(s, order, "request", "", State.REQUESTED.value, user, Role.CUSTOMER if Role.CUSTOMER
                              in roles else Role.CUSTOMER_SERVICE, "", {"items": len(checked)})
            return order

    async def _check_items(self, s: AsyncSession, items: list[dict[str, Any]], org: OrganisationRow,
                           source: str) -> list[dict[str, Any]]:
        if not isinstance(items, list) or not items:
            raise ConfigError(source, "items", "no items", "list at least one instrument to calibrate")
        known = set(ITEM_FIELDS) | {"description", "scope", "requested_points"}
        checked, serials = [], set()
        for i, item in enumerate(items):
            where = f"items[{i}]"
            if not isinstance(item, dict):
                raise ConfigError(source, where, "must be a table", "give make, model, serial and parameter")
            for key in item:
                if key not in known:
                    raise ConfigError(source, f"{where}.{key}", "unknown field", f"use {', '.join(sorted(known))}")
            for key in ITEM_FIELDS:
                value = item.get(key)
                if not isinstance(value, str) or not value.strip():
                    raise ConfigError(source, f"{where}.{key}", "missing or empty", f"give the item's {key}")
            for key in ("description", "scope", "requested_points"):
                if not isinstance(item.get(key, ""), str):
                    raise ConfigError(source, f"{where}.{key}", "must be text", f"write the {key} as text")
            serial = item["serial"].strip()
            if serial in serials:
                raise ConfigError(source, f"{where}.serial", f"serial {serial!r} appears twice in this order",
                                  "each instrument once; check the serial numbers")
            serials.add(serial)
            other = await s.scalar(select(EquipmentRow).where(
                EquipmentRow.serial == serial, EquipmentRow.make == item["make"], EquipmentRow.model == item["model"]))
            if other is not None and other.organisation_id != org.id:
                raise ConfigError(source, f"{where}.serial",
                                  f"{item['make']} {item['model']} serial {serial!r} is registered to another owner",
                                  "check the serial number on the instrument's plate")
            open_item = await s.scalar(select(OrderItemRow.id).join(OrderRow, OrderRow.id == OrderItemRow.order_id)
                                       .where(OrderItemRow.serial == serial, OrderItemRow.make == item["make"],
                                              OrderItemRow.model == item["model"],
                                              OrderRow.state.not_in([State.CLOSED.value, State.CANCELLED.value])))
            if open_item is not None:
                raise ConfigError(source, f"{where}.serial", f"serial {serial!r} is already in an open order",
                                  "finish or cancel that order first")
            checked.append({k: (item.get(k, "") or "").strip() for k in known})
        return checked

    async def _register_customer_item(self, s: AsyncSession, user: UserRow, org: OrganisationRow,
                                      item: dict[str, Any]) -> None:
        """Items under test enter the equipment register by serial, so the bench can match them on connect."""
        exists = await s.scalar(select(EquipmentRow.id).where(
            EquipmentRow.serial == item["serial"], EquipmentRow.make == item["make"],
            EquipmentRow.model == item["model"]))
        if exists is None:
            row = EquipmentRow(category="customer_item", make=item["make"], model=item["model"], serial=item["serial"],
                               description=item.get("description", ""), organisation_id=org.id,
                               created_at=self.stamp())
            s.add(row)
            await s.flush()
            await audit.append(s, actor=user.username, action="register customer item", entity="equipment",
                               entity_id=row.id)

    # -- the one door for every step ---------------------------------------------------------------
    async def act(self, user: UserRow, order_ref: str | int, action: str, *, reason: str = "",
                  data: dict[str, Any] | None = None, expected_version: int | None = None,
                  source: str = "") -> dict[str, Any]:
        data = dict(data or {})
        source = source or action
        async with self.db.transaction() as s:
            user = await self._fresh(s, user)
            order = await self._order(s, user, order_ref, lock=True)
            org = await s.get(OrganisationRow, order.organisation_id)
            assert org is not None
            t = transition_for(action, org.kind, order.service)
            if t is None:
                if action not in ACTIONS:
                    raise ConfigError(source, "action", f"unknown action {action!r}", f"one of {', '.join(ACTIONS)}")
                raise Refused("R-KIND", f"{action} is not a step of an {org.kind} {order.service} order",
                              RULES["R-KIND"])
            role = self._role_for(user, t)
            state = State(order.state)
            await self._named_preconditions(s, order, org, action, state)
            if state not in t.sources:
                now = allowed_actions(state, org.kind, order.service)
                raise Refused("R-STATE", f"order {self._label(order)} is {state.value}; {action} needs "
                              f"{' or '.join(sorted(x.value for x in t.sources))}",
                              f"possible now: {', '.join(now) or 'nothing (the order is finished)'}")
            if expected_version is not None and expected_version != order.version:
                raise Refused("R-VERSION", f"order {self._label(order)} changed since version {expected_version} "
                              f"(now {order.version})", "reload the order and decide again")
            if t.needs_reason and not reason.strip():
                raise Refused("R-REASON", f"{action} needs a reason", "say why (--reason)")
            handler = getattr(self, f"_do_{action}")
            outcome: dict[str, Any] = await handler(s, user, order, org, data, reason, source) or {}
            before = order.state
            if t.target is not None:
                order.state = t.target.value
            order.version += 1
            await self._event(s, order, action, before, order.state, user, role, reason, outcome)
            await audit.append(s, actor=user.username, action=action, entity="orders", entity_id=order.id,
                               detail={"from": before, "to": order.state, "reason": reason})
            return {"order": self._label(order), "state": order.state, "version": order.version} | outcome

    async def _named_preconditions(self, s: AsyncSession, order: OrderRow, org: OrganisationRow, action: str,
                                   state: State) -> None:
        """Two rules the seeds state in words are refused under their own names, not just as "wrong state"."""
        if action == "download_certificate" and not await s.scalar(
                select(func.count(SurveyResponseRow.id)).where(SurveyResponseRow.order_id == order.id)):
            raise Refused("R-SURVEY", f"order {self._label(order)} has no satisfaction survey yet",
                          RULES["R-SURVEY"] + " (submit_survey)")
        if action == "start_calibration" and org.kind == "external" and not await self._payment_verified(s, order):
            raise Refused("R-PAY", f"order {self._label(order)} has no verified payment", RULES["R-PAY"])

    def _role_for(self, user: UserRow, t: Transition) -> Role:
        mine = roles_of(user) & t.roles
        if not mine:
            raise Refused("R-ROLE", f"{user.username} ({', '.join(sorted(roles_of(user)))}) may not {t.action}",
                          f"{t.action} is done by {' or '.join(sorted(r.value for r in t.roles))}")
        return sorted(mine)[0]

    # -- step handlers: check the data, then write what the step produces ----------------------------
    async def _do_confirm_scope(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        return await self._set_tariffs(s, user, order, org, data, source)

    async def _do_revise_scope(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                               data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        return await self._set_tariffs(s, user, order, org, data, source)

    async def _set_tariffs(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                           data: dict[str, Any], source: str) -> dict[str, Any]:
        """External customers pay per item by tariff line; internal customers are free (seed 000)."""
        items = await self._items(s, order)
        tariffs = data.get("tariffs", {})
        if org.kind == "internal":
            if tariffs:
                raise ConfigError(source, "tariffs", "an internal customer is not charged", "leave the tariffs out")
            return {"total": 0}
        if not isinstance(tariffs, dict):
            raise ConfigError(source, "tariffs", "expected item position -> tariff code", 'e.g. {"1": "K-DMM-01"}')
        total = 0
        for item in items:
            code = tariffs.get(str(item.position), tariffs.get(item.position))  # type: ignore[call-overload]
            if code is None:
                raise ConfigError(source, f"tariffs.{item.position}", f"no tariff line for item {item.position} "
                                  f"({item.make} {item.model})", "give the tariff code of this item's service")
            line = await s.scalar(select(TariffLineRow).where(TariffLineRow.code == code))
            if line is None:
                raise ConfigError(source, f"tariffs.{item.position}", f"no tariff line {code!r}",
                                  "see `daq orders tariff list`")
            if line.service not in ("any", order.service):
                raise ConfigError(source, f"tariffs.{item.position}", f"{code} is for {line.service} work",
                                  f"choose a tariff line for {order.service} work")
            item.tariff_code, item.price = line.code, line.price
            total += line.price
            await audit.append(s, actor=user.username, action="set tariff", entity="order_items", entity_id=item.id)
        return {"total": total}

    async def _do_approve_tariff(self, *args: Any) -> None:
        return None

    async def _do_accept_tariff(self, *args: Any) -> None:
        return None

    async def _do_reject_tariff(self, *args: Any) -> None:
        return None

    async def _do_issue_billing(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        items = await self._items(s, order)
        currencies = {(await s.scalar(select(TariffLineRow.currency).where(TariffLineRow.code == i.tariff_code)))
                      for i in items}
        amount = sum(i.price for i in items)
        seq = await self._counter(s, f"billing-{self.today().year}")
        billing = BillingRow(order_id=order.id, code=f"8{self.today().year % 100:02d}{seq:012d}", amount=amount,
                             currency=currencies.pop() if len(currencies) == 1 else "IDR", issued_by=user.id,
                             issued_at=self.stamp())
        s.add(billing)
        await s.flush()
        await audit.append(s, actor=user.username, action="issue billing", entity="billings", entity_id=billing.id)
        return {"billing_code": billing.code, "amount": amount, "currency": billing.currency}

    async def _do_pay(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                      data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        billing = await self._billing(s, order)
        code = data.get("billing_code")
        code = str(code).strip() if isinstance(code, str | int) and not isinstance(code, bool) else code
        if code != billing.code:
            raise ConfigError(source, "billing_code", f"{code!r} is not this order's billing code",
                              f"pay against billing code {billing.code}")
        amount = data.get("amount")
        if isinstance(amount, str) and amount.strip().isdigit():
            amount = int(amount.strip())
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ConfigError(source, "amount", f"expected a whole positive amount in {billing.currency}, "
                              f"got {data.get('amount')!r}", f"pay {billing.amount}")
        if amount != billing.amount:
            raise ConfigError(source, "amount", f"{amount} does not match the billing ({billing.amount})",
                              f"pay exactly {billing.amount} {billing.currency}")
        method = data.get("method", "billing-code")
        if method not in ("billing-code", "transfer"):
            raise ConfigError(source, "method", f"unknown method {method!r}",
                              "billing-code (settles itself) or transfer (upload the proof)")
        reference = str(data.get("reference", "")).strip()
        proof = str(data.get("proof", "")).strip()
        if not reference:
            raise ConfigError(source, "reference", "missing", "give the bank or treasury transaction reference")
        if method == "transfer" and not proof:
            raise ConfigError(source, "proof", "a transfer needs its proof of payment",
                              "attach the proof (file name or reference of the upload)")
        payment = PaymentRow(billing_id=billing.id, amount=amount, method=method, reference=reference, proof=proof,
                             paid_by=user.id, paid_at=self.stamp())
        s.add(payment)
        await s.flush()
        await audit.append(s, actor=user.username, action="pay", entity="payments", entity_id=payment.id)
        if method == "billing-code":  # seed 001 step 9: a generated billing is settled automatically
            check = PaymentCheckRow(payment_id=payment.id, accepted=True, checked_by=None, checked_at=self.stamp(),
                                    note="settled against the billing code")
            s.add(check)
            await s.flush()
            await audit.append(s, actor="billing system", action="settle payment", entity="payment_checks",
                               entity_id=check.id)
            return {"settled": True, "__target": State.PAID.value}
        return {"settled": False}

    async def _do_verify_payment(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                 data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        return await self._check_payment(s, user, order, True, reason)

    async def _do_reject_payment(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                 data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        return await self._check_payment(s, user, order, False, reason)

    async def _check_payment(self, s: AsyncSession, user: UserRow, order: OrderRow, accepted: bool,
                             reason: str) -> dict[str, Any]:
        billing = await self._billing(s, order)
        payment = await s.scalar(select(PaymentRow).where(PaymentRow.billing_id == billing.id)
                                 .order_by(PaymentRow.id.desc()).limit(1))
        assert payment is not None
        check = PaymentCheckRow(payment_id=payment.id, accepted=accepted, checked_by=user.id, checked_at=self.stamp(),
                                note=reason)
        s.add(check)
        await s.flush()
        await audit.append(s, actor=user.username, action="check payment", entity="payment_checks", entity_id=check.id)
        return {"payment": payment.reference, "accepted": accepted}

    async def _do_propose_schedule(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                   data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        day = _date_field(data, "date", source)
        if day < self.today():
            raise ConfigError(source, "date", f"{day} is in the past", "propose a date from today on")
        calendar = await self.calendar(s)
        if not calendar.is_working_day(day):
            raise ConfigError(source, "date", f"{day} is not a working day", "propose a working day")
        row = ScheduleRow(order_id=order.id, proposed_for=_iso(day), proposed_by=user.id, proposed_at=self.stamp())
        s.add(row)
        await s.flush()
        await audit.append(s, actor=user.username, action="propose schedule", entity="schedules", entity_id=row.id)
        return {"proposed_for": _iso(day)}

    async def _answer_schedule(self, s: AsyncSession, user: UserRow, order: OrderRow, answer: str) -> ScheduleRow:
        row = await s.scalar(select(ScheduleRow).where(ScheduleRow.order_id == order.id)
                             .order_by(ScheduleRow.id.desc()).limit(1))
        assert row is not None
        row.answer, row.answered_by, row.answered_at = answer, user.id, self.stamp()
        await audit.append(s, actor=user.username, action=f"{answer} schedule", entity="schedules", entity_id=row.id)
        return row

    async def _do_accept_schedule(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                  data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        row = await self._answer_schedule(s, user, order, "accepted")
        order.scheduled_for = row.proposed_for
        order.order_number = await self._next_number(s, "ORD")
        return {"order_number": order.order_number, "scheduled_for": row.proposed_for}

    async def _do_decline_schedule(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                   data: dict[str, Any], reason: str, source: str) -> None:
        await self._answer_schedule(s, user, order, "declined")

    async def _do_issue_work_order(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                   data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        row = WorkOrderRow(order_id=order.id, number=await self._next_number(s, "SPK"), issued_by=user.id,
                           issued_at=self.stamp(), instructions=str(data.get("instructions", "")))
        s.add(row)
        await s.flush()
        await audit.append(s, actor=user.username, action="issue work order", entity="work_orders", entity_id=row.id)
        return {"work_order": row.number}

    async def _do_receive_items(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        conditions = _per_item(data, "condition", await self._items(s, order), source,
                               "describe each item's condition on receipt (e.g. \"good, no visible damage\")")
        samples = {}
        for item, condition in conditions:
            item.sample_id = await self._next_number(s, "S")
            samples[item.position] = item.sample_id
            await audit.append(s, actor=user.username, action="issue sample id", entity="order_items",
                               entity_id=item.id)
            await self._movement(s, user, item, "received", condition)
        order.received_date = _iso(self.today())
        order.due_date = _iso(due_date(ServiceType.EXSITU, self.today(), await self.calendar(s),
                                       days_off=order.days_off))
        return {"samples": samples, "due_date": order.due_date}

    async def _movement(self, s: AsyncSession, user: UserRow, item: OrderItemRow, direction: str,
                        condition: str) -> None:
        row = SampleMovementRow(item_id=item.id, direction=direction, at=self.stamp(), by=user.id, condition=condition)
        s.add(row)
        await s.flush()
        await audit.append(s, actor=user.username, action=f"item {direction}", entity="sample_movements",
                           entity_id=row.id)

    async def _do_assign_analyst(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                 data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        chosen = _per_item(data, "analyst", await self._items(s, order), source,
                           "name the analyst (username) for each item")
        assigned = {}
        for item, username in chosen:
            analyst = await s.scalar(select(UserRow).where(UserRow.username == username))
            if analyst is None or not analyst.active or Role.ANALYST not in roles_of(analyst):
                raise ConfigError(source, f"analyst.{item.position}", f"{username!r} is not an active analyst",
                                  "choose an analyst qualified for this parameter")
            row = AssignmentRow(item_id=item.id, analyst_id=analyst.id, assigned_by=user.id, assigned_at=self.stamp())
            s.add(row)
            await s.flush()
            await audit.append(s, actor=user.username, action="assign analyst", entity="assignments",
                               entity_id=row.id)
            assigned[item.position] = username
        return {"analysts": assigned}

    async def _do_validate_assignment(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                      data: dict[str, Any], reason: str, source: str) -> None:
        assigners = {a.assigned_by for a in await self._assignments(s, order)}
        if user.id in assigners:
            raise Refused("R-SOD-3", f"{user.username} assigned the analyst on this order", RULES["R-SOD-3"])
        await self._review(s, user, order, "assignment", "approved", reason)

    async def _do_reject_assignment(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                    data: dict[str, Any], reason: str, source: str) -> None:
        await self._review(s, user, order, "assignment", "returned", reason)

    async def _do_start_calibration(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                    data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        """Checked before any instrument is touched; `link_run` then ties the created run to the item."""
        item = await self._item(s, order, data.get("item"), source)
        await self._require_assigned(s, user, order, item)
        if org.kind == "external" and not await self._payment_verified(s, order):
            raise Refused("R-PAY", f"order {self._label(order)} has no verified payment", RULES["R-PAY"])
        if order.calibration_date is None:
            order.calibration_date = _iso(self.today())
            if order.service == ServiceType.INSITU.value:
                order.due_date = _iso(due_date(ServiceType.INSITU, self.today(), await self.calendar(s),
                                               days_off=order.days_off))
        return {"item": item.position, "serial": item.serial, "due_date": order.due_date}

    async def link_run(self, user: UserRow, item_id: int, run_id: int) -> None:
        async with self.db.transaction() as s:
            row = ItemRunRow(item_id=item_id, run_id=run_id, launched_by=user.id, launched_at=self.stamp())
            s.add(row)
            await s.flush()
            await audit.append(s, actor=user.username, action="link run", entity="item_runs", entity_id=row.id,
                               detail={"run": run_id})

    async def _do_submit_results(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                 data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        versions = {}
        for item in await self._items(s, order):
            await self._require_assigned(s, user, order, item)
            run = await s.scalar(select(RunRow).join(ItemRunRow, ItemRunRow.run_id == RunRow.id)
                                 .where(ItemRunRow.item_id == item.id, RunRow.status == "completed")
                                 .order_by(RunRow.id.desc()).limit(1))
            if run is None:
                raise Refused("R-RESULTS", f"item {item.position} ({item.make} {item.model} {item.serial}) has no "
                              "completed calibration run", "launch its run: daq orders run ...")
            content = await self._result_content(s, order, item, run)
            digest = audit.sha256(audit.canonical(content))
            latest = await s.scalar(select(ItemResultRow).where(ItemResultRow.item_id == item.id)
                                    .order_by(ItemResultRow.version.desc()).limit(1))
            if latest is not None and latest.content_sha256 == digest:
                versions[item.position] = latest.version
                continue
            if latest is not None and not reason.strip():
                raise Refused("R-REASON", f"item {item.position}'s results replace version {latest.version}",
                              "say what was corrected (--reason)")
            row = ItemResultRow(item_id=item.id, version=(latest.version + 1) if latest else 1,
                                supersedes_id=latest.id if latest else None, run_id=run.id,
                                content_json=audit.canonical(content), content_sha256=digest, reason=reason,
                                created_by=user.id, created_at=self.stamp())
            s.add(row)
            await s.flush()
            await audit.append(s, actor=user.username, action="submit results", entity="item_results",
                               entity_id=row.id, detail={"supersedes": row.supersedes_id})
            versions[item.position] = row.version
        return {"result_versions": versions}

    async def _result_content(self, s: AsyncSession, order: OrderRow, item: OrderItemRow,
                              run: RunRow) -> dict[str, Any]:
        rows = (await s.scalars(select(PointResultRow).where(PointResultRow.run_id == run.id)
                                .order_by(PointResultRow.point_index, PointResultRow.channel))).all()
        options = json.loads(run.options_json or "{}")
        return {"item": {"make": item.make, "model": item.model, "serial": item.serial, "parameter": item.parameter},
                "run": run.id, "procedure": run.procedure_name, "started": run.created_at,
                "finished": run.finished_at, "standards": options.get("standards", []),
                "points": [json.loads(r.result_json) | {"point_index": r.point_index, "channel": r.channel,
                                                        "point_result_id": r.id} for r in rows]}

    async def _do_verify(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                         data: dict[str, Any], reason: str, source: str) -> None:
        await self._not_the_analyst(s, user, order, "verify")
        await self._review(s, user, order, "verification", "approved", reason)

    async def _do_return_from_verification(self, s: AsyncSession, user: UserRow, order: OrderRow,
                                           org: OrganisationRow, data: dict[str, Any], reason: str,
                                           source: str) -> None:
        await self._review(s, user, order, "verification", "returned", reason)

    async def _do_validate(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                           data: dict[str, Any], reason: str, source: str) -> None:
        await self._not_the_analyst(s, user, order, "validate")
        last_verifier = await s.scalar(select(ReviewRow.reviewer_id).where(
            ReviewRow.order_id == order.id, ReviewRow.stage == "verification", ReviewRow.outcome == "approved")
            .order_by(ReviewRow.id.desc()).limit(1))
        if last_verifier == user.id:
            raise Refused("R-SOD-2", f"{user.username} verified these results", RULES["R-SOD-2"])
        await self._review(s, user, order, "validation", "approved", reason)

    async def _do_return_from_validation(self, s: AsyncSession, user: UserRow, order: OrderRow,
                                         org: OrganisationRow, data: dict[str, Any], reason: str,
                                         source: str) -> None:
        await self._review(s, user, order, "validation", "returned", reason)

    async def _do_assign_numbers(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                 data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        numbers = {}
        for item in await self._items(s, order):
            result = await self._latest_result(s, item)
            previous = await s.scalar(select(CertificateNumberRow).where(CertificateNumberRow.item_id == item.id)
                                      .order_by(CertificateNumberRow.id.desc()).limit(1))
            row = CertificateNumberRow(number=await self._next_number(s, "CAL"), item_id=item.id, result_id=result.id,
                                       replaces=previous.number if previous else None, issued_by=user.id,
                                       issued_at=self.stamp())
            s.add(row)
            await s.flush()
            await audit.append(s, actor=user.username, action="assign certificate number",
                               entity="certificate_numbers", entity_id=row.id, detail={"replaces": row.replaces})
            numbers[item.position] = row.number
        return {"certificates": numbers}

    async def _do_request_signature(self, *args: Any) -> None:
        return None

    async def _do_sign(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                       data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        await self._not_the_analyst(s, user, order, "sign")
        if not user.signing_key or not user.public_key:
            raise Refused("R-PASSPHRASE", f"{user.username} has no signing key",
                          "set one first: daq orders user signing-key")
        passphrase = data.get("passphrase")
        if not isinstance(passphrase, str) or not passphrase:
            raise Refused("R-PASSPHRASE", "no signing passphrase given", "give the signing passphrase")
        from results.certificates.issue import issue_documents  # renders PDFs: loaded only when signing

        key = signing.unlock(user.signing_key, passphrase)
        signed = {}
        for cert in await self._current_certificates(s, order):
            result = await s.get(ItemResultRow, cert.result_id)
            assert result is not None
            digest = certificate_digest(cert, result)
            row = SignatureRow(certificate_id=cert.id, signer_id=user.id, signed_at=self.stamp(), digest=digest,
                               signature=key.sign(bytes.fromhex(digest)).hex(), public_key=user.public_key)
            s.add(row)
            await s.flush()
            await audit.append(s, actor=user.username, action="sign certificate", entity="signatures",
                               entity_id=row.id, detail={"certificate": cert.number})
            await issue_documents(s, cert, row, key, issued=_iso(self.today()), at=self.stamp(),
                                  actor=user.username)
            signed[cert.number] = digest
        return {"signed": signed}

    async def _do_release(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                          data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        if order.released_date is not None:  # an amended certificate: the promise was kept or not the first time
            return {"released": order.released_date, "late": order.late, "amendment": True}
        order.released_date = _iso(self.today())
        order.late = order.due_date is not None and order.released_date > order.due_date
        if order.late:
            row = CompensationRow(organisation_id=org.id, late_order_id=order.id, granted_at=self.stamp())
            s.add(row)
            await s.flush()
            await audit.append(s, actor=user.username, action="grant compensation", entity="compensations",
                               entity_id=row.id)
        return {"released": order.released_date, "due": order.due_date, "late": order.late}

    async def _do_submit_survey(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        answers = SurveyAnswers.parse(data.get("answers", {}), source)
        row = SurveyResponseRow(order_id=order.id, respondent_id=user.id, service=order.service,
                                answers_json=audit.canonical(dict(answers.answers)), comment=answers.comment or "",
                                submitted_at=self.stamp())
        s.add(row)
        await s.flush()
        await audit.append(s, actor=user.username, action="submit survey", entity="survey_responses",
                           entity_id=row.id)
        return {"survey": "received"}

    async def _do_download_certificate(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                       data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        certificates = []
        for cert in await self._current_certificates(s, order):
            row = DownloadRow(certificate_id=cert.id, user_id=user.id, at=self.stamp())
            s.add(row)
            await s.flush()
            await audit.append(s, actor=user.username, action="download certificate",
                               entity="certificate_downloads", entity_id=row.id)
            certificates.append(await self._certificate_record(s, cert))
        return {"certificates": certificates}

    async def _do_return_items(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                               data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        pending = [i for i in await self._items(s, order) if not await self._returned(s, i)]
        if not pending:
            raise Refused("R-STATE", "every item of this order has been returned already", "nothing to return")
        for item, condition in _per_item(data, "condition", pending, source,
                                         "describe each item's condition as it leaves the lab"):
            await self._movement(s, user, item, "returned", condition)
        return {"returned": [i.position for i in pending]}

    async def _do_acknowledge_receipt(self, s: AsyncSession, user: UserRow, order: OrderRow, org: OrganisationRow,
                                      data: dict[str, Any], reason: str, source: str) -> dict[str, Any]:
        downloaded = await s.scalar(select(func.count(DownloadRow.id)).join(
            CertificateNumberRow, CertificateNumberRow.id == DownloadRow.certificate_id).join(
            OrderItemRow, OrderItemRow.id == CertificateNumberRow.item_id).where(OrderItemRow.order_id == order.id))
        if not downloaded:
            raise Refused("R-DOWNLOAD", "the certificate has not been downloaded yet", RULES["R-DOWNLOAD"])
        if order.service == ServiceType.EXSITU.value:
            for item in await self._items(s, order):
                if not await self._returned(s, item):
                    raise Refused("R-RETURN", f"item {item.position} has not been returned yet", RULES["R-RETURN"])
        evaluation = str(data.get("evaluation", "")).strip()
        if not evaluation:
            raise ConfigError(source, "evaluation", "missing",
                              "say whether the certificate meets your needs (e.g. \"conforming, accepted\")")
        row = ReceiptAcknowledgementRow(order_id=order.id, acknowledged_by=user.id, acknowledged_at=self.stamp(),
                                        evaluation=evaluation)
        s.add(row)
        await s.flush()
        await audit.append(s, actor=user.username, action="acknowledge receipt", entity="receipt_acknowledgements",
                           entity_id=row.id)
        return {"acknowledged": row.acknowledged_at}

    async def _do_archive_acknowledgement(self, s: AsyncSession, user: UserRow, order: OrderRow,
                                          org: OrganisationRow, data: dict[str, Any], reason: str,
                                          source: str) -> None:
        row = await s.scalar(select(ReceiptAcknowledgementRow).where(ReceiptAcknowledgementRow.order_id == order.id))
        assert row is not None
        row.archived_by, row.archived_at = user.id, self.stamp()
        await audit.append(s, actor=user.username, action="archive acknowledgement",
                           entity="receipt_acknowledgements", entity_id=row.id)

    async def _do_close(self, *args: Any) -> None:
        return None

    async def _do_cancel(self, *args: Any) -> None:
        return None

    async def _do_reopen_for_amendment(self, *args: Any) -> None:
        return None

    # -- shared checks and lookups -----------------------------------------------------------------------
    async def _fresh(self, s: AsyncSession, user: UserRow) -> UserRow:
        row = await s.get(UserRow, user.id)
        if row is None:
            raise Refused("R-LOGIN", f"no user {user.username!r}", "log in again")
        if not row.active:
            raise Refused("R-ACTIVE", f"account {row.username!r} is not activated", RULES["R-ACTIVE"])
        return row

    async def _order(self, s: AsyncSession, user: UserRow, ref: str | int, *, lock: bool = False) -> OrderRow:
        query = select(OrderRow)
        text = str(ref)
        if text.isdigit():
            query = query.where(OrderRow.id == int(text))
        else:
            query = query.where((OrderRow.order_number == text) | (OrderRow.request_number == text))
        if lock:
            query = query.with_for_update()
        order = await s.scalar(query)
        if order is None:
            raise NotFound(f"no order {ref!r}")
        if Role.CUSTOMER in roles_of(user) and order.organisation_id != user.organisation_id:
            raise Refused("R-ORG", f"order {self._label(order)} belongs to another organisation", RULES["R-ORG"])
        return order

    @staticmethod
    def _label(order: OrderRow) -> str:
        return order.order_number or order.request_number

    async def _items(self, s: AsyncSession, order: OrderRow) -> list[OrderItemRow]:
        return list((await s.scalars(select(OrderItemRow).where(OrderItemRow.order_id == order.id)
                                     .order_by(OrderItemRow.position))).all())

    async def _item(self, s: AsyncSession, order: OrderRow, position: Any, source: str) -> OrderItemRow:
        items = await self._items(s, order)
        if position is None and len(items) == 1:
            return items[0]
        for item in items:
            if str(item.position) == str(position):
                return item
        raise ConfigError(source, "item", f"order {self._label(order)} has no item {position!r}",
                          f"choose one of {', '.join(str(i.position) for i in items)}")

    async def _assignments(self, s: AsyncSession, order: OrderRow) -> list[AssignmentRow]:
        return list((await s.scalars(select(AssignmentRow).join(OrderItemRow, OrderItemRow.id == AssignmentRow.item_id)
                                     .where(OrderItemRow.order_id == order.id).order_by(AssignmentRow.id))).all())

    async def _require_assigned(self, s: AsyncSession, user: UserRow, order: OrderRow, item: OrderItemRow) -> None:
        current = await s.scalar(select(AssignmentRow.analyst_id).where(AssignmentRow.item_id == item.id)
                                 .order_by(AssignmentRow.id.desc()).limit(1))
        if current != user.id:
            raise Refused("R-ASSIGN", f"{user.username} is not the analyst assigned to item {item.position}",
                          RULES["R-ASSIGN"])

    async def _not_the_analyst(self, s: AsyncSession, user: UserRow, order: OrderRow, what: str) -> None:
        ran = await s.scalar(select(func.count(ItemRunRow.id)).join(OrderItemRow, OrderItemRow.id == ItemRunRow.item_id)
                             .where(OrderItemRow.order_id == order.id, ItemRunRow.launched_by == user.id))
        submitted = await s.scalar(select(func.count(ItemResultRow.id)).join(
            OrderItemRow, OrderItemRow.id == ItemResultRow.item_id)
            .where(OrderItemRow.order_id == order.id, ItemResultRow.created_by == user.id))
        if ran or submitted:
            raise Refused("R-SOD-1", f"{user.username} ran a calibration of order {self._label(order)} and may not "
                          f"{what} it", RULES["R-SOD-1"])

    async def _payment_verified(self, s: AsyncSession, order: OrderRow) -> bool:
        accepted = await s.scalar(select(func.count(PaymentCheckRow.id))
                                  .join(PaymentRow, PaymentRow.id == PaymentCheckRow.payment_id)
                                  .join(BillingRow, BillingRow.id == PaymentRow.billing_id)
                                  .where(BillingRow.order_id == order.id, PaymentCheckRow.accepted.is_(True)))
        return bool(accepted)

    async def _billing(self, s: AsyncSession, order: OrderRow) -> BillingRow:
        billing = await s.scalar(select(BillingRow).where(BillingRow.order_id == order.id)
                                 .order_by(BillingRow.id.desc()).limit(1))
        assert billing is not None
        return billing

    async def _returned(self, s: AsyncSession, item: OrderItemRow) -> bool:
        return bool(await s.scalar(select(func.count(SampleMovementRow.id)).where(
            SampleMovementRow.item_id == item.id, SampleMovementRow.direction == "returned")))

    async def _latest_result(self, s: AsyncSession, item: OrderItemRow) -> ItemResultRow:
        row = await s.scalar(select(ItemResultRow).where(ItemResultRow.item_id == item.id)
                             .order_by(ItemResultRow.version.desc()).limit(1))
        assert row is not None
        return row

    async def _current_certificates(self, s: AsyncSession, order: OrderRow) -> list[CertificateNumberRow]:
        certs = []
        for item in await self._items(s, order):
            row = await s.scalar(select(CertificateNumberRow).where(CertificateNumberRow.item_id == item.id)
                                 .order_by(CertificateNumberRow.id.desc()).limit(1))
            if row is not None:
                certs.append(row)
        return certs

    async def _certificate_record(self, s: AsyncSession, cert: CertificateNumberRow) -> dict[str, Any]:
        result = await s.get(ItemResultRow, cert.result_id)
        signature = await s.scalar(select(SignatureRow).where(SignatureRow.certificate_id == cert.id))
        assert result is not None
        documents = (await s.execute(select(CertificateDocumentRow.id, CertificateDocumentRow.kind,
                                            CertificateDocumentRow.file_name, CertificateDocumentRow.sha256)
                                     .where(CertificateDocumentRow.certificate_id == cert.id)
                                     .order_by(CertificateDocumentRow.kind))).all()
        return {"number": cert.number, "replaces": cert.replaces, "result_version": result.version,
                "documents": [{"id": d.id, "kind": d.kind, "file_name": d.file_name, "sha256": d.sha256}
                              for d in documents],
                "results": json.loads(result.content_json), "content_sha256": result.content_sha256,
                "signature": None if signature is None else {
                    "digest": signature.digest, "signature": signature.signature, "public_key": signature.public_key,
                    "signed_at": signature.signed_at}}

    async def _review(self, s: AsyncSession, user: UserRow, order: OrderRow, stage: str, outcome: str,
                      comment: str) -> None:
        ids = [str((await self._latest_result(s, i)).id) for i in await self._items(s, order)] \
            if stage != "assignment" else []
        row = ReviewRow(order_id=order.id, stage=stage, outcome=outcome, reviewer_id=user.id, at=self.stamp(),
                        comment=comment, result_ids=",".join(ids))
        s.add(row)
        await s.flush()
        await audit.append(s, actor=user.username, action=f"{stage} {outcome}", entity="reviews", entity_id=row.id)

    async def _event(self, s: AsyncSession, order: OrderRow, action: str, before: str, after: str, user: UserRow,
                     role: Role, reason: str, payload: dict[str, Any]) -> None:
        target = payload.pop("__target", None)
        if target is not None:
            order.state = after = target
        row = OrderEventRow(order_id=order.id, action=action, from_state=before, to_state=after, actor_id=user.id,
                            role=role.value, at=self.stamp(), reason=reason, payload_json=audit.canonical(payload))
        s.add(row)
        await s.flush()
        await audit.append(s, actor=user.username, action=action, entity="order_events", entity_id=row.id)

    async def _counter(self, s: AsyncSession, name: str) -> int:
        result = (await s.execute(update(CounterRow).where(CounterRow.name == name)
                                  .values(value=CounterRow.value + 1).returning(CounterRow.value))).first()
        if result is None:
            s.add(CounterRow(name=name, value=1))
            await s.flush()
            return 1
        return int(result[0])

    async def _next_number(self, s: AsyncSession, prefix: str) -> str:
        year = self.today().year
        return f"{prefix}-{year}-{await self._counter(s, f'{prefix}-{year}'):05d}"

    async def calendar(self, s: AsyncSession) -> WorkingCalendar:
        days = (await s.scalars(select(HolidayRow.day))).all()
        return WorkingCalendar(date.fromisoformat(d) for d in days)


def certificate_digest(cert: CertificateNumberRow, result: ItemResultRow) -> str:
    """What the head signs: the certificate number bound to the exact results version it reports."""
    return audit.sha256(audit.canonical({"certificate": cert.number, "replaces": cert.replaces,
                                         "results_sha256": result.content_sha256}))


def _date_field(data: dict[str, Any], key: str, source: str) -> date:
    value = data.get(key)
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(source, key, f"expected a date YYYY-MM-DD, got {value!r}", "e.g. 2026-12-01") from None


def _per_item(data: dict[str, Any], key: str, items: list[OrderItemRow], source: str,
              fix: str) -> list[tuple[OrderItemRow, str]]:
    """One value for every item (`key`), or per item position (`key` as a table {"1": ..., "2": ...})."""
    value = data.get(key)
    out = []
    for item in items:
        v = value.get(str(item.position), value.get(item.position)) if isinstance(value, dict) else value
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(source, f"{key}.{item.position}" if isinstance(value, dict) else key,
                              f"missing for item {item.position} ({item.make} {item.model} {item.serial})", fix)
        out.append((item, v.strip()))
    return out
