"""The lab's own settings kept in the records: its tariff lines and its public holidays.

Both are edited by people with authority over them (treasurer or administrator for the tariff;
administrator for holidays), and both are audited like every other record.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from daq.errors import ConfigError
from results.records import audit
from results.records.accounts import Role, roles_of
from results.records.calendar import Holiday
from results.records.errors import Refused
from results.records.models import HolidayRow, LaboratoryRow, TariffLineRow, UserRow


def _require(user: UserRow, roles: set[Role], what: str) -> None:
    if not roles_of(user) & roles:
        raise Refused("R-ROLE", f"{user.username} may not {what}",
                      f"{what} is done by {' or '.join(sorted(r.value for r in roles))}")


async def add_tariff_line(s: AsyncSession, user: UserRow, *, code: str, description: str, price: int,
                          currency: str = "IDR", service: str = "any") -> TariffLineRow:
    _require(user, {Role.TREASURER, Role.ADMIN}, "edit the tariff")
    if not code.strip():
        raise ConfigError("tariff", "code", "empty", "give the tariff line a code")
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise ConfigError("tariff", "price", f"expected a whole amount >= 0, got {price!r}",
                          "prices are whole units of the currency's smallest unit")
    if len(currency) != 3 or not currency.isalpha():
        raise ConfigError("tariff", "currency", f"{currency!r} is not an ISO 4217 code", "e.g. IDR, EUR")
    if service not in ("insitu", "exsitu", "any"):
        raise ConfigError("tariff", "service", f"unknown service {service!r}", "insitu, exsitu or any")
    if await s.scalar(select(TariffLineRow.id).where(TariffLineRow.code == code)) is not None:
        raise ConfigError("tariff", "code", f"{code!r} exists already", "a price change is a new code")
    row = TariffLineRow(code=code, description=description, price=price, currency=currency.upper(), service=service)
    s.add(row)
    await s.flush()
    await audit.append(s, actor=user.username, action="add tariff line", entity="tariff_lines", entity_id=row.id)
    return row


async def add_holidays(s: AsyncSession, user: UserRow, holidays: list[Holiday]) -> int:
    """Adds the days not yet known; a day already known keeps its name. Returns how many were added."""
    _require(user, {Role.ADMIN}, "set public holidays")
    known = set((await s.scalars(select(HolidayRow.day))).all())
    added = 0
    for h in holidays:
        if h.date.isoformat() in known:
            continue
        row = HolidayRow(day=h.date.isoformat(), name=h.name)
        s.add(row)
        await s.flush()
        await audit.append(s, actor=user.username, action="add holiday", entity="holidays", entity_id=row.day)
        added += 1
    return added


async def set_laboratory(s: AsyncSession, user: UserRow, *, name: str, address: str, country: str,
                         accreditation: str = "", email: str = "", verify_url: str = "",
                         at: str = "") -> LaboratoryRow:
    """The identity every certificate prints (ISO/IEC 17025 7.8.2.1 b): set once, changed by an administrator."""
    _require(user, {Role.ADMIN}, "set the laboratory's identity")
    for field, value in (("name", name), ("address", address)):
        if not value.strip():
            raise ConfigError("laboratory", field, "empty", f"give the laboratory's {field} as certificates print it")
    if len(country) != 2 or not country.isalpha():
        raise ConfigError("laboratory", "country", f"{country!r} is not an ISO 3166-1 alpha-2 code", "e.g. ID, DE, GB")
    row = await s.get(LaboratoryRow, 1)
    if row is None:
        row = LaboratoryRow(id=1)
        s.add(row)
    row.name, row.address, row.country = name.strip(), address.strip(), country.upper()
    row.accreditation, row.email, row.verify_url, row.updated_at = accreditation, email, verify_url, at
    await s.flush()
    await audit.append(s, actor=user.username, action="set laboratory identity", entity="laboratory", entity_id=1)
    return row
