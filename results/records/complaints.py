"""Complaints: raised by a customer (about an order or the service), answered by customer service."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from daq.errors import ConfigError
from results.records import audit
from results.records.accounts import Role, roles_of
from results.records.errors import NotFound, Refused
from results.records.models import ComplaintRow, OrderRow, UserRow


async def raise_complaint(s: AsyncSession, user: UserRow, text: str, order_ref: str | None = None) -> ComplaintRow:
    if Role.CUSTOMER not in roles_of(user) or user.organisation_id is None:
        raise Refused("R-ROLE", f"{user.username} is not a customer", "complaints are raised by customers")
    if not text.strip():
        raise ConfigError("complaint", "text", "empty", "say what went wrong")
    order_id = None
    if order_ref is not None:
        order = await s.scalar(select(OrderRow).where((OrderRow.order_number == order_ref)
                                                      | (OrderRow.request_number == order_ref)))
        if order is None:
            raise NotFound(f"no order {order_ref!r}")
        if order.organisation_id != user.organisation_id:
            raise Refused("R-ORG", f"order {order_ref} belongs to another organisation",
                          "a customer complains about their own orders")
        order_id = order.id
    row = ComplaintRow(organisation_id=user.organisation_id, order_id=order_id, raised_by=user.id,
                       raised_at=datetime.now(UTC).isoformat(timespec="seconds"), text=text.strip())
    s.add(row)
    await s.flush()
    await audit.append(s, actor=user.username, action="raise complaint", entity="complaints", entity_id=row.id)
    return row


async def answer_complaint(s: AsyncSession, user: UserRow, complaint_id: int, response: str) -> ComplaintRow:
    if Role.CUSTOMER_SERVICE not in roles_of(user):
        raise Refused("R-ROLE", f"{user.username} is not customer service", "customer service answers complaints")
    row = await s.get(ComplaintRow, complaint_id)
    if row is None:
        raise NotFound(f"no complaint {complaint_id}")
    if row.response is not None:
        raise Refused("R-STATE", f"complaint {complaint_id} was answered already", "raise a new complaint to go on")
    if not response.strip():
        raise ConfigError("complaint", "response", "empty", "write the answer")
    row.response, row.responded_by = response.strip(), user.id
    row.responded_at = datetime.now(UTC).isoformat(timespec="seconds")
    await audit.append(s, actor=user.username, action="answer complaint", entity="complaints", entity_id=row.id)
    return row
