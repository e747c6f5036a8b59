"""The satisfaction index against seed 004's published 2021 figures and hand-worked questionnaires."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from daq.errors import ConfigError
from results.records.survey import (
    ELEMENTS,
    SurveyAnswers,
    SurveyIndex,
    compare_periods,
    grade_of,
    index_by,
    round_score,
    survey_index,
)

# Seed 004, "Nilai Survei Kepuasan Masyarakat per unsur pelayanan" 2021, and "Nilai SKM 89,80".
PUBLISHED_2021 = {"U1": "88.13", "U2": "88.56", "U3": "88.62", "U4": "90.80", "U5": "89.45",
                  "U6": "91.14", "U7": "93.00", "U8": "90.15", "U9": "88.34"}


def answers(*values: int, comment: str | None = None) -> SurveyAnswers:
    return SurveyAnswers(dict(zip((code for code, _ in ELEMENTS), values, strict=True)), comment)


def test_elements_in_seed_order() -> None:
    assert [code for code, _ in ELEMENTS] == [f"U{i}" for i in range(1, 10)]
    assert dict(ELEMENTS)["U3"] == "turnaround time"
    assert dict(ELEMENTS)["U8"] == "complaint handling"
    assert dict(ELEMENTS)["U9"] == "facilities"


def test_reproduces_seed_004_published_index() -> None:
    index = SurveyIndex.from_element_scores(PUBLISHED_2021)
    # (88.13 + 88.56 + 88.62 + 90.80 + 89.45 + 91.14 + 93.00 + 90.15 + 88.34) / 9 = 808.19 / 9 = 89.7988...
    assert index.score == Fraction(80819, 900)
    assert index.display == Decimal("89.80")
    assert index.grade.letter == "A"
    assert index.grade.quality == "very good"
    assert index.grade.quality_id == "Sangat Baik"
    # 88.13 is below A's 88.31, so U1 is a B even in an A year; 88.34 (U9) is an A.
    assert index.element("U1").grade.letter == "B"
    assert index.element("U9").grade.letter == "A"
    assert [e.code for e in index.lowest()] == ["U1", "U9", "U2"]
    assert index.action_plan_elements == () and index.poor_elements == ()
    assert [str(e.display) for e in index.elements] == list(PUBLISHED_2021.values())


def test_index_from_hand_worked_answers() -> None:
    responses = [
        answers(4, 4, 4, 4, 4, 4, 4, 4, 4),
        answers(3, 3, 3, 3, 3, 3, 3, 3, 3),
        answers(4, 4, 2, 4, 4, 4, 4, 4, 2),
        answers(3, 3, 3, 3, 3, 3, 3, 3, 1),
    ]
    index = survey_index(responses)
    assert index.responses == 4
    # U1,U2,U4..U8: (4+3+4+3)/4 = 3.5 -> 87.50 (B); U3: (4+3+2+3)/4 = 3.0 -> 75.00 (C);
    # U9: (4+3+2+1)/4 = 2.5 -> 62.50 (D). Index: (7*3.5 + 3.0 + 2.5)/9 * 25 = 30/9 * 25 = 83.333... -> 83.33 (B).
    assert index.element("U1").mean == Fraction(7, 2)
    assert index.element("U1").display == Decimal("87.50")
    assert index.element("U3").display == Decimal("75.00")
    assert index.element("U9").display == Decimal("62.50")
    assert index.score == Fraction(250, 3)
    assert index.display == Decimal("83.33")
    assert index.grade.letter == "B" and index.grade.quality == "good"
    assert [e.code for e in index.action_plan_elements] == ["U3"]
    assert [e.code for e in index.poor_elements] == ["U9"]
    assert index.element("U3").grade.needs_action_plan and index.element("U9").grade.needs_action_plan
    assert not index.element("U1").grade.needs_action_plan
    # Lowest three: U9 (2.5), U3 (3.0), then the 3.5 tie goes to U1.
    assert [e.code for e in index.lowest()] == ["U9", "U3", "U1"]


def test_all_ones_and_all_fours_are_the_scale_ends() -> None:
    assert survey_index([answers(*[1] * 9)]).display == Decimal("25.00")
    assert survey_index([answers(*[1] * 9)]).grade.letter == "D"
    assert survey_index([answers(*[4] * 9)]).display == Decimal("100.00")


@pytest.mark.parametrize(("score", "letter"), [
    ("100.00", "A"), ("88.31", "A"), ("88.30", "B"), ("88.305", "A"), ("88.3049", "B"),
    ("76.61", "B"), ("76.60", "C"), ("76.605", "B"), ("65.00", "C"), ("64.99", "D"), ("64.995", "C"),
    ("25.00", "D"),
])
def test_grade_boundaries(score: str, letter: str) -> None:
    assert grade_of(score).letter == letter
    assert grade_of(Decimal(score)).letter == letter
    assert grade_of(Fraction(Decimal(score))).letter == letter


def test_grade_words_follow_seed() -> None:
    assert [(g.letter, g.quality_id) for g in (grade_of("90"), grade_of("80"), grade_of("70"), grade_of("50"))] == [
        ("A", "Sangat Baik"), ("B", "Baik"), ("C", "Kurang Baik"), ("D", "Tidak Baik")]


def test_grade_of_float_uses_the_written_value() -> None:
    # A float is graded by its shortest written form (88.315 is stored as 88.31499..., still written 88.315).
    assert grade_of(88.305).letter == "A"
    assert grade_of(88.3049).letter == "B"
    assert grade_of(64.995).letter == "C"
    assert grade_of(88.0).letter == "B"


def test_grade_outside_scale_is_refused() -> None:
    with pytest.raises(ValueError):
        grade_of("24.99")
    with pytest.raises(ValueError):
        grade_of("100.01")


def test_round_score_is_half_up_and_exact() -> None:
    assert round_score(Fraction(17661, 200)) == Decimal("88.31")  # exactly 88.305
    assert round_score(Fraction(250, 3)) == Decimal("83.33")
    assert round_score(Fraction(25)) == Decimal("25.00")


def test_exact_mean_at_a_band_edge() -> None:
    # A mean of 3.5324 x 25 = 88.31 exactly (A); 3.532 x 25 = 88.30 exactly (B).
    index = SurveyIndex.from_element_means({code: "3.5324" for code, _ in ELEMENTS}, responses=1)
    assert index.display == Decimal("88.31") and index.grade.letter == "A"
    index = SurveyIndex.from_element_means({code: "3.532" for code, _ in ELEMENTS}, responses=1)
    assert index.display == Decimal("88.30") and index.grade.letter == "B"


def test_zero_responses_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        survey_index([])
    assert (info.value.source, info.value.field) == ("survey", "responses")
    assert "at least one response" in info.value.fix


def test_parse_valid_answers() -> None:
    data = {f"U{i}": 1 + i % 4 for i in range(1, 10)} | {"comment": "  quick service  "}
    parsed = SurveyAnswers.parse(data, "form 17")
    assert parsed.answers["U1"] == 2 and parsed.answers["U4"] == 1
    assert parsed.comment == "quick service"
    assert SurveyAnswers.parse({f"U{i}": 4 for i in range(1, 10)}, "form 18").comment is None


@pytest.mark.parametrize(("change", "field", "problem"), [
    ({"U5": None}, "U5", "missing"),
    ({"U5": 5}, "U5", "outside 1..4"),
    ({"U5": 0}, "U5", "outside 1..4"),
    ({"U5": "4"}, "U5", "whole number"),
    ({"U5": 3.0}, "U5", "whole number"),
    ({"U5": True}, "U5", "whole number"),
    ({"U10": 4}, "U10", "unknown"),
    ({"comment": 12}, "comment", "text"),
])
def test_parse_errors_name_the_element(change: dict[str, object], field: str, problem: str) -> None:
    data: dict[str, object] = {f"U{i}": 3 for i in range(1, 10)}
    for key, value in change.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    with pytest.raises(ConfigError) as info:
        SurveyAnswers.parse(data, "survey-2026.csv row 4")
    err = info.value
    assert err.source == "survey-2026.csv row 4"
    assert err.field == field
    assert problem in err.problem
    assert err.fix
    assert "survey-2026.csv row 4" in str(err) and field in str(err)


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(ValueError):
        SurveyAnswers({"U1": 4})
    with pytest.raises(ValueError):
        SurveyAnswers({f"U{i}": 5 for i in range(1, 10)})


def test_compare_periods_gives_the_three_biggest_drops() -> None:
    previous = SurveyIndex.from_element_scores(PUBLISHED_2021)
    current = SurveyIndex.from_element_scores(PUBLISHED_2021 | {
        "U1": "86.00",  # -2.13
        "U3": "88.00",  # -0.62
        "U4": "89.00",  # -1.80
        "U7": "92.99",  # -0.01
        "U9": "90.00",  # rose
    })
    drops = compare_periods(current, previous)
    assert [(d.code, d.change) for d in drops] == [
        ("U1", Decimal("-2.13")), ("U4", Decimal("-1.80")), ("U3", Decimal("-0.62"))]
    assert drops[0].previous == Decimal("88.13") and drops[0].current == Decimal("86.00")


def test_compare_periods_only_lists_real_drops() -> None:
    previous = SurveyIndex.from_element_scores(PUBLISHED_2021)
    one_drop = SurveyIndex.from_element_scores(PUBLISHED_2021 | {"U6": "91.00"})
    assert [(d.code, d.change) for d in compare_periods(one_drop, previous)] == [("U6", Decimal("-0.14"))]
    assert compare_periods(previous, previous) == []


def test_index_by_groups_per_key() -> None:
    rows = [
        ((2026, "insitu"), answers(*[4] * 9)),
        ((2026, "exsitu"), answers(*[2] * 9)),
        ((2026, "insitu"), answers(*[3] * 9)),
    ]
    by_key = index_by(rows)
    assert list(by_key) == [(2026, "insitu"), (2026, "exsitu")]
    assert by_key[(2026, "insitu")].responses == 2
    assert by_key[(2026, "insitu")].display == Decimal("87.50")  # mean 3.5 x 25
    assert by_key[(2026, "exsitu")].display == Decimal("50.00")  # mean 2 x 25
    assert index_by([]) == {}


def test_render_text() -> None:
    text = SurveyIndex.from_element_scores(PUBLISHED_2021).render_text()
    assert "89.80" in text
    assert "A (very good; Sangat Baik)" in text
    assert "U1 88.13, U9 88.34, U2 88.56" in text
    text = survey_index([answers(4, 4, 2, 4, 4, 4, 4, 4, 1)]).render_text()
    assert "action plan needed (grade C): U3" not in text  # U3 mean 2 -> 50.00 is a D, not a C
    assert "graded D: U3, U9" in text
