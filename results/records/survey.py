"""The public-service satisfaction index (IKM / nilai SKM, PermenPAN-RB 14/2017) as seed 004 reports it.

Every answer is 1..4 on nine service elements U1..U9; an element's score is its mean answer x 25, and the
index is the mean of the nine element means x 25. Scores are published to two decimals and the grade bands
have gaps at that resolution (B ends at 88.30, A starts at 88.31), so the grade is read from the value
rounded half-up to two decimals. Means are kept as exact fractions: a float mean that lands a hair below
88.305 would otherwise change a published grade.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeVar

from daq.errors import ConfigError

# Order and names as seed 004 tabulates them ("U1 Persyaratan ... U9 Sarana, dan Prasarana").
ELEMENTS: tuple[tuple[str, str], ...] = (
    ("U1", "requirements"),
    ("U2", "procedure"),
    ("U3", "turnaround time"),
    ("U4", "cost/tariff"),
    ("U5", "product specification"),
    ("U6", "staff competence"),
    ("U7", "staff behaviour"),
    ("U8", "complaint handling"),
    ("U9", "facilities"),
)
ELEMENT_NAMES_ID: dict[str, str] = {
    "U1": "Persyaratan",
    "U2": "Sistem, Mekanisme, dan Prosedur",
    "U3": "Waktu Penyelesaian",
    "U4": "Biaya/Tarif",
    "U5": "Produk Spesifikasi Jenis Pelayanan",
    "U6": "Kompetensi Pelaksana",
    "U7": "Perilaku Pelaksana",
    "U8": "Penanganan Pengaduan, Saran, dan Masukan",
    "U9": "Sarana dan Prasarana",
}
_CODES = tuple(code for code, _ in ELEMENTS)
_NAMES = dict(ELEMENTS)
_ANSWER_FIX = "answer every element U1..U9 with a whole number 1 (worst) to 4 (best)"


@dataclass(frozen=True)
class Grade:
    letter: str
    low: Decimal
    high: Decimal
    quality: str
    quality_id: str

    @property
    def needs_action_plan(self) -> bool:
        """Seed 004 asks for an action plan for elements graded C; a D is worse and is flagged too."""
        return self.letter in ("C", "D")


# Seed 004: "Mutu Pelayanan A (Sangat Baik; 88,31 - 100,00) ... D (Tidak Baik; 25,00 - 64,99)".
GRADES: tuple[Grade, ...] = (
    Grade("A", Decimal("88.31"), Decimal("100.00"), "very good", "Sangat Baik"),
    Grade("B", Decimal("76.61"), Decimal("88.30"), "good", "Baik"),
    Grade("C", Decimal("65.00"), Decimal("76.60"), "less than good", "Kurang Baik"),
    Grade("D", Decimal("25.00"), Decimal("64.99"), "not good", "Tidak Baik"),
)


def round_score(value: Fraction) -> Decimal:
    """Two decimals, half up, as the published tables show them (exact: no float on the way)."""
    return Decimal(math.floor(value * 100 + Fraction(1, 2))).scaleb(-2)


def grade_of(score: Decimal | Fraction | float | str) -> Grade:
    """The band of a 25..100 score, after rounding to the two decimals the bands are written in."""
    shown = round_score(score if isinstance(score, Fraction) else Fraction(Decimal(str(score))))
    for grade in GRADES:
        if grade.low <= shown <= grade.high:
            return grade
    raise ValueError(f"a satisfaction score lies between 25.00 and 100.00, got {shown}")


@dataclass(frozen=True)
class SurveyAnswers:
    """One customer's questionnaire: the nine answers (1 worst .. 4 best) and an optional comment."""

    answers: Mapping[str, int] = field(hash=False)
    comment: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "answers", dict(self.answers))
        if set(self.answers) != set(_CODES):
            raise ValueError(f"answers must cover exactly {', '.join(_CODES)}, got {sorted(self.answers)}")
        for code, value in self.answers.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4:
                raise ValueError(f"{code}: an answer is a whole number 1..4, got {value!r}")

    @classmethod
    def parse(cls, data: Mapping[str, Any], source: str) -> SurveyAnswers:
        """A submitted questionnaire, rejected element by element so the form can point at the bad answer."""
        for key in data:
            if key not in _NAMES and key != "comment":
                raise ConfigError(source, str(key), "unknown field", f"use {', '.join(_CODES)} and comment")
        answers: dict[str, int] = {}
        for code in _CODES:
            if code not in data:
                raise ConfigError(source, code, f"missing answer for {_NAMES[code]}", _ANSWER_FIX)
            value = data[code]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(source, code, f"expected a whole number 1..4, got {value!r}", _ANSWER_FIX)
            if not 1 <= value <= 4:
                raise ConfigError(source, code, f"answer {value} is outside 1..4", _ANSWER_FIX)
            answers[code] = value
        comment = data.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise ConfigError(source, "comment", f"expected text, got {comment!r}", "write the comment as text")
        if comment is not None:
            comment = comment.strip() or None
        return cls(answers, comment)


@dataclass(frozen=True)
class ElementScore:
    code: str
    name: str
    mean: Fraction

    @property
    def score(self) -> Fraction:
        """Mean answer x 25, exact."""
        return self.mean * 25

    @property
    def display(self) -> Decimal:
        return round_score(self.score)

    @property
    def grade(self) -> Grade:
        return grade_of(self.score)


@dataclass(frozen=True)
class ElementChange:
    code: str
    name: str
    previous: Decimal
    current: Decimal

    @property
    def change(self) -> Decimal:
        return self.current - self.previous


@dataclass(frozen=True)
class SurveyIndex:
    responses: int
    elements: tuple[ElementScore, ...]

    @classmethod
    def from_element_means(cls, means: Mapping[str, Fraction | Decimal | int | str], responses: int) -> SurveyIndex:
        """Build from element means (1..4) already known, e.g. last year's published report."""
        if set(means) != set(_CODES):
            raise ValueError(f"means must cover exactly {', '.join(_CODES)}, got {sorted(means)}")
        elements = []
        for code in _CODES:
            raw = means[code]
            mean = raw if isinstance(raw, Fraction) else Fraction(Decimal(raw) if isinstance(raw, str) else raw)
            if not 1 <= mean <= 4:
                raise ValueError(f"{code}: a mean answer lies in 1..4, got {float(mean)}")
            elements.append(ElementScore(code, _NAMES[code], mean))
        return cls(responses, tuple(elements))

    @classmethod
    def from_element_scores(cls, scores: Mapping[str, Decimal | str], responses: int = 0) -> SurveyIndex:
        """Build from published element scores (25..100), the form a previous year's report comes in."""
        return cls.from_element_means({c: Fraction(Decimal(v)) / 25 for c, v in scores.items()}, responses)

    def element(self, code: str) -> ElementScore:
        for e in self.elements:
            if e.code == code:
                return e
        raise KeyError(code)

    @property
    def score(self) -> Fraction:
        """Mean of the element means x 25, exact (each element weighs 1/9)."""
        return sum((e.mean for e in self.elements), Fraction(0)) / len(self.elements) * 25

    @property
    def display(self) -> Decimal:
        return round_score(self.score)

    @property
    def grade(self) -> Grade:
        return grade_of(self.score)

    @property
    def action_plan_elements(self) -> tuple[ElementScore, ...]:
        """Elements graded C: seed 004 asks for an action plan per service type for each."""
        return tuple(e for e in self.elements if e.grade.letter == "C")

    @property
    def poor_elements(self) -> tuple[ElementScore, ...]:
        """Elements graded D: below the band the seed plans for, so surfaced separately."""
        return tuple(e for e in self.elements if e.grade.letter == "D")

    def lowest(self, n: int = 3) -> tuple[ElementScore, ...]:
        """The n lowest-scoring elements (seed 004 plans for three); ties go to the lower code, U1 first."""
        return tuple(sorted(self.elements, key=lambda e: (e.score, _CODES.index(e.code)))[:n])

    def render_text(self) -> str:
        lines = [f"Satisfaction index (IKM), {self.responses} response(s)",
                 f"{'element':<26} {'mean':>6} {'score':>6}  grade"]
        for e in self.elements:
            lines.append(f"{e.code + ' ' + e.name:<26} {float(e.mean):>6.3f} {e.display:>6}  "
                         f"{e.grade.letter} ({e.grade.quality})")
        grade = self.grade
        lines.append(f"{'index':<26} {'':>6} {self.display:>6}  {grade.letter} ({grade.quality}; {grade.quality_id})")
        lines.append("lowest three: " + ", ".join(f"{e.code} {e.display}" for e in self.lowest()))
        if self.action_plan_elements:
            lines.append("action plan needed (grade C): " + ", ".join(e.code for e in self.action_plan_elements))
        if self.poor_elements:
            lines.append("graded D: " + ", ".join(e.code for e in self.poor_elements))
        return "\n".join(lines)


def survey_index(responses: Sequence[SurveyAnswers]) -> SurveyIndex:
    """The index of a set of questionnaires (a period, a service type, or both)."""
    if not responses:
        raise ConfigError("survey", "responses", "no responses to compute an index from",
                          "collect at least one response")
    count = len(responses)
    means = {code: Fraction(sum(r.answers[code] for r in responses), count) for code in _CODES}
    return SurveyIndex.from_element_means(means, count)


def compare_periods(current: SurveyIndex, previous: SurveyIndex, n: int = 3) -> list[ElementChange]:
    """The n elements that fell most since the previous period, biggest drop first.

    Compared on the published two-decimal scores, because the analysis is written against last year's
    report; elements that held or rose are left out ("apabila ada" - only if there are any).
    """
    changes = [ElementChange(e.code, e.name, previous.element(e.code).display, e.display) for e in current.elements]
    drops = [c for c in changes if c.change < 0]
    drops.sort(key=lambda c: (c.change, _CODES.index(c.code)))
    return drops[:n]


K = TypeVar("K", bound=Hashable)


def index_by(responses: Iterable[tuple[K, SurveyAnswers]]) -> dict[K, SurveyIndex]:
    """One index per key, e.g. (year, service), in first-seen key order; a key exists only with answers."""
    groups: dict[K, list[SurveyAnswers]] = {}
    for key, answers in responses:
        groups.setdefault(key, []).append(answers)
    return {key: survey_index(group) for key, group in groups.items()}


__all__ = [
    "ELEMENTS", "ELEMENT_NAMES_ID", "GRADES", "ElementChange", "ElementScore", "Grade", "SurveyAnswers", "SurveyIndex",
    "compare_periods", "grade_of", "index_by", "round_score", "survey_index",
]
