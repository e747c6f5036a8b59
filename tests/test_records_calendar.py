"""Working-day arithmetic, the seed-000 service levels and the monthly turnaround report.

Expected dates were counted by hand on a printed 2026/2027 calendar (Mon=0); the comments show the count.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from daq.errors import ConfigError
from results.records.calendar import (
    SERVICE_LEVEL_DAYS,
    Holiday,
    ServiceType,
    TurnaroundCase,
    WorkingCalendar,
    due_date,
    is_overdue,
    load_holidays,
    monthly_turnaround,
    parse_holidays,
    turnaround_days,
)

# A Lebaran-style run of days off: Wed 18 .. Tue 24 March 2026 (five weekdays, plus the weekend between).
LEBARAN = [date(2026, 3, d) for d in (18, 19, 20, 21, 23, 24)]
YEAR_END = [date(2026, 12, 24), date(2026, 12, 25), date(2027, 1, 1)]


def naive_between(cal: WorkingCalendar, start: date, end: date) -> int:
    """Day-by-day reference count, only for checking the closed-form one."""
    sign = 1
    if end < start:
        start, end, sign = end, start, -1
    count, d = 0, start
    while d < end:
        d += timedelta(days=1)
        count += cal.is_working_day(d)
    return sign * count


def test_is_working_day_skips_weekend_and_holidays() -> None:
    cal = WorkingCalendar(LEBARAN)
    assert cal.is_working_day(date(2026, 3, 17))  # Tuesday
    assert not cal.is_working_day(date(2026, 3, 18))  # holiday
    assert not cal.is_working_day(date(2026, 3, 14))  # Saturday
    assert not cal.is_working_day(date(2026, 3, 15))  # Sunday
    assert cal.is_working_day(date(2026, 3, 25))


def test_add_working_days_without_holidays() -> None:
    # After Mon 2 Mar: 3-6 (4), 9-13 (9), 16-20 (14), 23-27 (19), 30-31 (21), Wed 1 Apr (22).
    assert WorkingCalendar().add_working_days(date(2026, 3, 2), 22) == date(2026, 4, 1)


def test_add_working_days_across_lebaran_week() -> None:
    # 3-6 (4), 9-13 (9), 16-17 (11), 18-24 off, 25-27 (14), 30-31 (16), 1-3 Apr (19), 6-8 Apr (22).
    cal = WorkingCalendar(LEBARAN)
    assert cal.add_working_days(date(2026, 3, 2), 22) == date(2026, 4, 8)
    assert cal.working_days_between(date(2026, 3, 2), date(2026, 4, 8)) == 22


def test_add_working_days_across_year_end() -> None:
    # After Thu 17 Dec: 18 (1), 21-23 (4), 24-25 off, 28-31 (8), 1 Jan off, Jan 4-8 (13), 11-15 (18),
    # 18-22 (23), 25-29 (28), Mon 1 Feb (29), Tue 2 Feb (30).
    cal = WorkingCalendar(YEAR_END)
    assert cal.add_working_days(date(2026, 12, 17), 30) == date(2027, 2, 2)
    # Same span without the holidays ends three working days sooner, on Thu 28 Jan.
    assert WorkingCalendar().add_working_days(date(2026, 12, 17), 30) == date(2027, 1, 28)


def test_start_day_is_not_counted_even_when_it_is_a_day_off() -> None:
    cal = WorkingCalendar(LEBARAN)
    assert cal.add_working_days(date(2026, 3, 2), 0) == date(2026, 3, 2)
    assert cal.add_working_days(date(2026, 3, 7), 1) == date(2026, 3, 9)  # Saturday -> Monday
    assert cal.add_working_days(date(2026, 3, 18), 1) == date(2026, 3, 25)  # inside the holiday run
    assert cal.add_working_days(date(2026, 3, 13), 1) == date(2026, 3, 16)  # Friday -> Monday


def test_negative_n_is_refused() -> None:
    with pytest.raises(ValueError, match="n must be >= 0"):
        WorkingCalendar().add_working_days(date(2026, 3, 2), -1)


def test_working_days_between_edges_and_symmetry() -> None:
    cal = WorkingCalendar(LEBARAN)
    assert cal.working_days_between(date(2026, 3, 2), date(2026, 3, 2)) == 0
    assert cal.working_days_between(date(2026, 3, 6), date(2026, 3, 8)) == 0  # Fri -> Sun
    assert cal.working_days_between(date(2026, 3, 6), date(2026, 3, 9)) == 1  # Fri -> Mon
    assert cal.working_days_between(date(2026, 3, 17), date(2026, 3, 25)) == 1  # across the holiday run
    assert cal.working_days_between(date(2026, 4, 8), date(2026, 3, 2)) == -22


def test_holiday_on_a_weekend_changes_nothing() -> None:
    # Sat 21 Mar is in LEBARAN; a calendar with only that day behaves like no holidays at all.
    only_saturday = WorkingCalendar([date(2026, 3, 21)])
    assert only_saturday.add_working_days(date(2026, 3, 2), 22) == date(2026, 4, 1)


def test_holiday_objects_and_custom_weekend() -> None:
    cal = WorkingCalendar([Holiday(date(2026, 3, 4), "test day")], weekend=frozenset({6}))
    # Six-day week, Wed 4 Mar off: after Mon 2 Mar: 3 (1), 5 (2), 6 (3), Sat 7 (4), 9 (5), 10 (6).
    assert cal.add_working_days(date(2026, 3, 2), 6) == date(2026, 3, 10)
    with pytest.raises(ValueError):
        WorkingCalendar(weekend=frozenset(range(7)))
    with pytest.raises(ValueError):
        WorkingCalendar(weekend=frozenset({7}))


def test_closed_form_agrees_with_day_by_day_count() -> None:
    rng = random.Random(20260318)
    holidays = LEBARAN + YEAR_END + [date(2027, 3, d) for d in range(8, 16)]
    cal = WorkingCalendar(holidays)
    for _ in range(300):
        start = date(2026, 1, 1) + timedelta(days=rng.randrange(600))
        n = rng.randrange(0, 120)
        due = cal.add_working_days(start, n)
        assert naive_between(cal, start, due) == n
        # The due date is itself a working day, and no earlier day reaches n.
        if n:
            assert cal.is_working_day(due)
            assert naive_between(cal, start, due - timedelta(days=1)) == n - 1
        end = start + timedelta(days=rng.randrange(-200, 200))
        assert cal.working_days_between(start, end) == naive_between(cal, start, end)


def test_long_spans_are_exact() -> None:
    cal = WorkingCalendar(YEAR_END)
    start, end = date(2000, 1, 1), date(2100, 1, 1)
    assert cal.working_days_between(start, end) == naive_between(cal, start, end)
    far = cal.add_working_days(date(2026, 1, 1), 10_000)
    assert cal.working_days_between(date(2026, 1, 1), far) == 10_000
    assert cal.is_working_day(far)


def test_service_levels_follow_seed_000() -> None:
    assert SERVICE_LEVEL_DAYS == {ServiceType.INSITU: 22, ServiceType.EXSITU: 30}
    cal = WorkingCalendar(LEBARAN)
    assert due_date(ServiceType.INSITU, date(2026, 3, 2), cal) == date(2026, 4, 8)
    # Exsitu from the same day: 22 working days land on 8 Apr, then 9-10 (24), 13-17 (29), Mon 20 Apr (30).
    assert due_date("exsitu", date(2026, 3, 2), cal) == date(2026, 4, 20)
    # One day off for an earlier late order (seed 002): 21 working days -> Tue 7 Apr.
    assert due_date(ServiceType.INSITU, date(2026, 3, 2), cal, days_off=1) == date(2026, 4, 7)
    with pytest.raises(ValueError):
        due_date(ServiceType.INSITU, date(2026, 3, 2), cal, days_off=-1)
    with pytest.raises(ValueError):
        due_date(ServiceType.INSITU, date(2026, 3, 2), cal, days_off=22)
    with pytest.raises(ValueError):
        due_date("onsite", date(2026, 3, 2), cal)


def test_turnaround_days_counts_like_the_promise() -> None:
    cal = WorkingCalendar(LEBARAN)
    assert turnaround_days(date(2026, 3, 2), date(2026, 4, 10), cal) == 24


def test_is_overdue() -> None:
    due = date(2026, 4, 1)
    assert not is_overdue(due, date(2026, 4, 1), None)
    assert is_overdue(due, date(2026, 4, 2), None)
    assert not is_overdue(due, date(2026, 4, 30), date(2026, 4, 1))
    assert is_overdue(due, date(2026, 4, 30), date(2026, 4, 2))
    assert not is_overdue(due, date(2026, 4, 30), date(2026, 3, 30))


def _april_cases() -> list[TurnaroundCase]:
    i, e = ServiceType.INSITU, ServiceType.EXSITU
    return [
        TurnaroundCase("I1", i, date(2026, 3, 2), date(2026, 4, 8), date(2026, 4, 8)),  # on time, 22 days
        TurnaroundCase("I2", i, date(2026, 3, 2), date(2026, 4, 8), date(2026, 4, 10)),  # late, 24 days
        # Due: 26-27 (2), 30-31 (4), 1-3 Apr (7), 6-10 (12), 13-17 (17), 20-24 (22) -> 24 Apr.
        # Done 15 Apr: 26,27,30,31, 1,2,3, 6..10, 13,14,15 = 15 working days.
        TurnaroundCase("I3", i, date(2026, 3, 25), date(2026, 4, 24), date(2026, 4, 15)),
        TurnaroundCase("I4", i, date(2026, 2, 2), date(2026, 3, 4), date(2026, 3, 31)),  # finished in March
        TurnaroundCase("I5", i, date(2026, 3, 30), date(2026, 4, 29), None),  # open, 1 working day late
        TurnaroundCase("E1", e, date(2026, 3, 2), date(2026, 4, 20), None),  # open, late 21-24, 27-30 = 8
        TurnaroundCase("E2", e, date(2026, 4, 2), date(2026, 5, 14), None),  # open, not yet due
        TurnaroundCase("E3", e, date(2026, 3, 2), date(2026, 4, 20), date(2026, 4, 20)),  # on time, 30 days
    ]


def test_case_due_dates_are_the_promised_ones() -> None:
    cal = WorkingCalendar(LEBARAN)
    for case in _april_cases():
        assert due_date(case.service, case.start, cal) == case.due, case.order_number


def test_monthly_turnaround_counts_by_service() -> None:
    cal = WorkingCalendar(LEBARAN)
    report = monthly_turnaround(_april_cases(), 2026, 4, cal, today=date(2026, 4, 30))
    insitu, exsitu = report.services
    assert insitu.service is ServiceType.INSITU
    assert (insitu.completed, insitu.on_time) == (3, 2)
    assert insitu.on_time_pct == pytest.approx(200 / 3)
    assert insitu.median_days == 22  # of 15, 22, 24
    assert insitu.worst_days == 24
    assert [(o.order_number, o.working_days_late) for o in insitu.overdue_open] == [("I5", 1)]
    assert (exsitu.completed, exsitu.on_time, exsitu.on_time_pct) == (1, 1, 100.0)
    assert (exsitu.median_days, exsitu.worst_days) == (30, 30)
    assert [(o.order_number, o.working_days_late) for o in exsitu.overdue_open] == [("E1", 8)]

    rows = report.rows()
    assert json.loads(json.dumps(rows)) == rows
    assert rows[0]["service"] == "insitu"
    assert rows[0]["on_time_pct"] == 66.7
    assert rows[1]["overdue_open"] == [{"order_number": "E1", "due": "2026-04-20", "working_days_late": 8}]

    text = report.render_text()
    assert "2026-04" in text
    assert "66.7" in text
    assert "E1" in text and "I5" in text and "E2" not in text


def test_median_of_an_even_count_is_the_midpoint() -> None:
    cal = WorkingCalendar(LEBARAN)
    cases = [c for c in _april_cases() if c.order_number in ("I1", "I2")]
    report = monthly_turnaround(cases, 2026, 4, cal, today=date(2026, 4, 30))
    assert report.services[0].median_days == 23  # (22 + 24) / 2


def test_empty_month_has_no_percentages() -> None:
    cal = WorkingCalendar(LEBARAN)
    report = monthly_turnaround(_april_cases(), 2026, 6, cal, today=date(2026, 4, 30))
    for s in report.services:
        assert s.completed == 0 and s.on_time == 0
        assert s.on_time_pct is None and s.median_days is None and s.worst_days is None
    rows = report.rows()
    assert rows[0]["on_time_pct"] is None
    assert "-" in report.render_text()
    empty = monthly_turnaround([], 2026, 6, cal, today=date(2026, 6, 30))
    assert all(not s.overdue_open for s in empty.services)
    with pytest.raises(ValueError):
        monthly_turnaround([], 2026, 13, cal, today=date(2026, 6, 30))


# --- holiday file ---------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "holidays.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_holidays_native_and_string_dates(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[holiday]]\ndate = 2026-12-25\nname = "Christmas Day"\n\n'
                            '[[holiday]]\ndate = "2027-01-01"\nname = " New Year "\n')
    assert load_holidays(path) == [Holiday(date(2026, 12, 25), "Christmas Day"), Holiday(date(2027, 1, 1), "New Year")]
    assert load_holidays(_write(tmp_path, "")) == []


@pytest.mark.parametrize(("text", "field", "fix_word"), [
    ('[[holiday]]\nname = "x"\n', "holiday[0].date", "YYYY-MM-DD"),
    ('[[holiday]]\ndate = 2026-12-25\nname = "a"\n[[holiday]]\ndate = 2026-01-01\nname = "b"\n'
     '[[holiday]]\ndate = 2026-05-01\nname = "c"\n[[holiday]]\ndate = "2026-02-30"\nname = "d"\n',
     "holiday[3].date", "real date"),
    ('[[holiday]]\ndate = "25/12/2026"\nname = "x"\n', "holiday[0].date", "real date"),
    ('[[holiday]]\ndate = 2026-12-25T08:00:00\nname = "x"\n', "holiday[0].date", "date alone"),
    ('[[holiday]]\ndate = 20261225\nname = "x"\n', "holiday[0].date", "2026-12-25"),
    ('[[holiday]]\ndate = 2026-12-25\n', "holiday[0].name", "name ="),
    ('[[holiday]]\ndate = 2026-12-25\nname = ""\n', "holiday[0].name", "name ="),
    ('[[holiday]]\ndate = 2026-12-25\nname = "a"\n[[holiday]]\ndate = "2026-12-25"\nname = "b"\n',
     "holiday[1].date", "once"),
    ('[[holiday]]\ndate = 2026-12-25\nname = "a"\nkind = "national"\n', "holiday[0].kind", "date and name"),
    ('holiday = "2026-12-25"\n', "holiday", "[[holiday]]"),
    ('[[holidays]]\ndate = 2026-12-25\nname = "a"\n', "holidays", "[[holiday]]"),
    ('[[holiday]\n', "(syntax)", "TOML"),
])
def test_load_holidays_errors_name_file_field_and_fix(tmp_path: Path, text: str, field: str, fix_word: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_holidays(path)
    err = info.value
    assert err.source == str(path)
    assert err.field == field
    assert fix_word in err.fix
    assert str(path) in str(err) and field in str(err)


def test_load_holidays_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_holidays(tmp_path / "nope.toml")
    assert info.value.field == "(file)"


def test_parse_holidays_from_a_dict() -> None:
    data = {"holiday": [{"date": date(2026, 8, 17), "name": "Independence Day"}]}
    assert parse_holidays(data, "inline") == [Holiday(date(2026, 8, 17), "Independence Day")]
    with pytest.raises(ConfigError, match="inline: holiday\\[0\\]: must be a table"):
        parse_holidays({"holiday": ["2026-08-17"]}, "inline")
