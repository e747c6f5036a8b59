"""Working days, the service-level promise and the monthly turnaround report.

The service standard promises a certificate within a number of *working* days (insitu 22 from the
calibration date, exsitu 30 from the day the item was received), so every due date and every
turnaround figure depends on the lab's holiday list. The arithmetic counts days closed-form (whole
weeks plus a sorted holiday list) rather than stepping day by day, so a report over 10 000 orders,
or a span across a long Lebaran "cuti bersama" run and a year end, costs the same as a short one.
"""

from __future__ import annotations

import bisect
import statistics
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from daq.errors import ConfigError

_HOLIDAY_FIX = 'write each holiday as [[holiday]] with date = 2026-12-25 and name = "Christmas Day"'


@dataclass(frozen=True)
class Holiday:
    date: date
    name: str


class WorkingCalendar:
    """Which days count towards a promise: not a weekend day and not a listed holiday."""

    def __init__(self, holidays: Iterable[date | Holiday] = (), weekend: frozenset[int] = frozenset({5, 6})) -> None:
        weekend = frozenset(weekend)
        if not weekend <= set(range(7)):
            raise ValueError(f"weekend days are weekday numbers 0 (Monday) to 6 (Sunday), got {sorted(weekend)}")
        if len(weekend) == 7:
            raise ValueError("a calendar with every weekday as weekend has no working day to count")
        self.weekend = weekend
        days = {h.date if isinstance(h, Holiday) else h for h in holidays}
        # Only holidays on a weekday take a working day away; a holiday on a Sunday changes nothing.
        self._holidays = sorted(d.toordinal() for d in days if d.weekday() not in weekend)
        self._holiday_set = frozenset(self._holidays)
        self._per_week = 7 - len(weekend)
        # _prefix[r]: working weekdays among the first r days of a week that starts on Monday.
        self._prefix = [sum(1 for wd in range(r) if wd not in weekend) for r in range(8)]

    def is_working_day(self, d: date) -> bool:
        return d.weekday() not in self.weekend and d.toordinal() not in self._holiday_set

    def _count_upto(self, ordinal: int) -> int:
        """Working days with ordinal 1..ordinal; ordinal 1 (0001-01-01) is a Monday, so weeks align."""
        weeks, rest = divmod(ordinal, 7)
        return weeks * self._per_week + self._prefix[rest] - bisect.bisect_right(self._holidays, ordinal)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end`; negative (and symmetric) when end is earlier."""
        return self._count_upto(end.toordinal()) - self._count_upto(start.toordinal())

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after `start` (start itself never counts, as in "22 days from" a date)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return start
        target = self._count_upto(start.toordinal()) + n
        # The answer lies between the weekend-only estimate and that estimate pushed back by every holiday.
        lo = start.toordinal() + 1
        weeks = -(-n // self._per_week)
        hi = start.toordinal() + 7 * (weeks + 1)
        while self._count_upto(hi) < target:
            hi += 7 * (1 + (target - self._count_upto(hi)) // self._per_week)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._count_upto(mid) >= target:
                hi = mid
            else:
                lo = mid + 1
        return date.fromordinal(lo)


def parse_holidays(data: Mapping[str, Any], source: str) -> list[Holiday]:
    """The `[[holiday]]` tables of a parsed TOML file, checked so a typo cannot silently shorten a promise."""
    entries = data.get("holiday", [])
    if not isinstance(entries, list):
        raise ConfigError(source, "holiday", "must be an array of tables", _HOLIDAY_FIX)
    unknown_top = sorted(set(data) - {"holiday"})
    if unknown_top:
        raise ConfigError(source, unknown_top[0], "unknown field", _HOLIDAY_FIX)
    holidays: list[Holiday] = []
    seen: dict[date, int] = {}
    for i, entry in enumerate(entries):
        where = f"holiday[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(source, where, "must be a table", _HOLIDAY_FIX)
        unknown = sorted(set(entry) - {"date", "name"})
        if unknown:
            raise ConfigError(source, f"{where}.{unknown[0]}", "unknown field", "use only date and name")
        day = _holiday_date(entry, source, where)
        name = entry.get("name")
        if name is None:
            raise ConfigError(source, f"{where}.name", "missing", 'add name = "..." (what the day is)')
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(source, f"{where}.name", f"expected a non-empty text, got {name!r}",
                              'write name = "..." (what the day is)')
        if day in seen:
            raise ConfigError(source, f"{where}.date", f"{day.isoformat()} already listed as holiday[{seen[day]}]",
                              "list each date once (merge the names if two holidays fall on one day)")
        seen[day] = i
        holidays.append(Holiday(day, name.strip()))
    return holidays


def _holiday_date(entry: Mapping[str, Any], source: str, where: str) -> date:
    if "date" not in entry:
        raise ConfigError(source, f"{where}.date", "missing", "add date = YYYY-MM-DD")
    value = entry["date"]
    # datetime is a subclass of date: a time of day on a holiday is a mistake, not a more precise date.
    if isinstance(value, datetime):
        raise ConfigError(source, f"{where}.date", f"expected a date, got the date-time {value.isoformat()}",
                          "write the date alone, e.g. date = 2026-12-25")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            if len(value) == 10:
                return date.fromisoformat(value)
        except ValueError:
            pass
        raise ConfigError(source, f"{where}.date", f"{value!r} is not a calendar date YYYY-MM-DD",
                          "write a real date, e.g. date = 2026-12-25")
    raise ConfigError(source, f"{where}.date", f"expected a date, got {value!r}", "write e.g. date = 2026-12-25")


def load_holidays(path: Path) -> list[Holiday]:
    """Read a holiday file; the lab edits it each year when the government publishes cuti bersama."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "(file)", f"cannot read: {exc.strerror or exc}", "check the path") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at the line shown") from exc
    return parse_holidays(data, source)


class ServiceType(StrEnum):
    INSITU = "insitu"
    EXSITU = "exsitu"


# Seed 000: insitu "22 Hari Kerja sejak tanggal pelaksanaan kalibrasi",
# exsitu "30 Hari Kerja sejak tanggal alat diterima oleh petugas penerima sampel".
SERVICE_LEVEL_DAYS: dict[ServiceType, int] = {ServiceType.INSITU: 22, ServiceType.EXSITU: 30}


def due_date(service: ServiceType | str, start: date, calendar: WorkingCalendar, *, days_off: int = 0) -> date:
    """The promised date. `start` is the calibration date (insitu) or the receipt date (exsitu).

    `days_off` is the compensation owed for an earlier late order: seed 002 takes one day off the next
    promise, so a customer holding two apology letters may be owed two.
    """
    promise = SERVICE_LEVEL_DAYS[ServiceType(service)]
    if not 0 <= days_off < promise:
        raise ValueError(f"days_off must be between 0 and {promise - 1}, got {days_off}")
    return calendar.add_working_days(start, promise - days_off)


def turnaround_days(start: date, completed: date, calendar: WorkingCalendar) -> int:
    """Working days the order took, counted the way the promise is (start day excluded)."""
    return calendar.working_days_between(start, completed)


def is_overdue(due: date, today: date, completed: date | None) -> bool:
    """Late means finished after the due date, or still open once the due date has passed."""
    if completed is not None:
        return completed > due
    return today > due


@dataclass(frozen=True)
class TurnaroundCase:
    order_number: str
    service: ServiceType
    start: date
    due: date
    completed: date | None = None


@dataclass(frozen=True)
class OverdueOrder:
    order_number: str
    due: date
    working_days_late: int


@dataclass(frozen=True)
class ServiceTurnaround:
    """One service type's month. Percentages are None for an empty month: 0 % would read as a failure."""

    service: ServiceType
    completed: int
    on_time: int
    median_days: float | None
    worst_days: int | None
    overdue_open: tuple[OverdueOrder, ...]

    @property
    def on_time_pct(self) -> float | None:
        return None if self.completed == 0 else 100.0 * self.on_time / self.completed


@dataclass(frozen=True)
class TurnaroundReport:
    year: int
    month: int
    today: date
    services: tuple[ServiceTurnaround, ...]

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per service type (dates as ISO text, percentage to 0.1)."""
        rows = []
        for s in self.services:
            pct = s.on_time_pct
            rows.append({
                "year": self.year,
                "month": self.month,
                "service": s.service.value,
                "completed": s.completed,
                "on_time": s.on_time,
                "on_time_pct": None if pct is None else round(pct, 1),
                "median_working_days": s.median_days,
                "worst_working_days": s.worst_days,
                "overdue_open": [
                    {"order_number": o.order_number, "due": o.due.isoformat(), "working_days_late": o.working_days_late}
                    for o in s.overdue_open
                ],
                "as_of": self.today.isoformat(),
            })
        return rows

    def render_text(self) -> str:
        def show(value: float | int | None, fmt: str) -> str:
            return "-" if value is None else format(value, fmt)

        lines = [f"Turnaround {self.year:04d}-{self.month:02d} (open orders as of {self.today.isoformat()})",
                 f"{'service':<8} {'target':>6} {'done':>5} {'on time':>7} {'on time %':>9} {'median':>6} "
                 f"{'worst':>5} {'open late':>9}"]
        for s in self.services:
            lines.append(f"{s.service.value:<8} {SERVICE_LEVEL_DAYS[s.service]:>6} {s.completed:>5} {s.on_time:>7} "
                         f"{show(s.on_time_pct, '.1f'):>9} {show(s.median_days, 'g'):>6} {show(s.worst_days, 'd'):>5} "
                         f"{len(s.overdue_open):>9}")
        for s in self.services:
            for o in s.overdue_open:
                lines.append(f"  open and late: {o.order_number} ({s.service.value}) due {o.due.isoformat()}, "
                             f"{o.working_days_late} working day(s) late")
        return "\n".join(lines)


def monthly_turnaround(cases: Iterable[TurnaroundCase], year: int, month: int, calendar: WorkingCalendar,
                       today: date) -> TurnaroundReport:
    """The supervisor's monthly check: orders finished this month against their promise, and what is still late."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    finished: dict[ServiceType, list[TurnaroundCase]] = {s: [] for s in ServiceType}
    open_late: dict[ServiceType, list[OverdueOrder]] = {s: [] for s in ServiceType}
    for case in cases:
        service = ServiceType(case.service)
        if case.completed is None:
            if is_overdue(case.due, today, None):
                late = calendar.working_days_between(case.due, today)
                open_late[service].append(OverdueOrder(case.order_number, case.due, late))
        elif case.completed.year == year and case.completed.month == month:
            finished[service].append(case)
    services = []
    for service in ServiceType:
        done = finished[service]
        days = [turnaround_days(c.start, c.completed, calendar) for c in done if c.completed is not None]
        on_time = sum(1 for c in done if not is_overdue(c.due, today, c.completed))
        overdue = tuple(sorted(open_late[service], key=lambda o: (o.due, o.order_number)))
        services.append(ServiceTurnaround(service, len(done), on_time,
                                          statistics.median(days) if days else None,
                                          max(days) if days else None, overdue))
    return TurnaroundReport(year, month, today, tuple(services))


__all__ = [
    "SERVICE_LEVEL_DAYS", "Holiday", "OverdueOrder", "ServiceTurnaround", "ServiceType", "TurnaroundCase",
    "TurnaroundReport", "WorkingCalendar", "due_date", "is_overdue", "load_holidays", "monthly_turnaround",
    "parse_holidays", "turnaround_days",
]
