"""Performance scores for inter-laboratory comparisons and proficiency tests: En, ζ, z and z′.

QA sends an artefact round the laboratories (or takes part in a provider's proficiency test) and
must judge each result against an assigned value x_pt (the source documents' "uji banding" and
"uji profisiensi"). This module computes the statistics of ISO 13528:2022 §9 and labels them with
the criteria ISO 13528 and ISO/IEC 17043 use:

- En = (x − x_pt) / √(U(x)² + U(x_pt)²), both U expanded at k = 2 (ISO 13528:2022 §9.7).
  |En| ≤ 1 satisfactory, |En| > 1 unsatisfactory. The calibration laboratories' score: it asks
  whether the difference is covered by the uncertainties both sides claim. A participant whose
  U is stated with k ≠ 2 has it rescaled to k = 2 through u = U/k (reported as `U_k2`).
- ζ = (x − x_pt) / √(u(x)² + u(x_pt)²), standard uncertainties (ISO 13528:2022 §9.6).
- z = (x − x_pt) / σ_pt (ISO 13528:2022 §9.4) and z′ = (x − x_pt) / √(σ_pt² + u(x_pt)²) (§9.5),
  for when u(x_pt) is not negligible, i.e. u(x_pt) > 0.3 σ_pt (§9.2).
  ζ, z and z′: |s| ≤ 2 satisfactory, 2 < |s| < 3 questionable, |s| ≥ 3 unsatisfactory
  (ISO/IEC 17043:2010 Annex B.4; ISO 13528 calls the last two "warning" and "action" signals).

The assigned value is either a reference value (a reference laboratory, a certified value) or,
when there is none, the consensus of the participants: the robust mean x* of Algorithm A
(ISO 13528:2022 §7.7, Annex C.3; see `results.robust_statistics`) with u(x_pt) = 1.25 s*/√p
(§7.7.3). σ_pt is given by the provider, or for a consensus defaults to the robust SD s* of the
same round (§8.6); the output always says which.

A consensus contains each participant's own result. Scores against it are what ISO 13528 uses
(one x_pt for everybody, so the z scores are comparable), and every participant is then flagged
`in_consensus`: its result pulled x_pt towards itself while the En and ζ formulas treat the two
as independent, which makes |En| and |ζ| somewhat too small. We therefore also give
`En_excluding_self` and `zeta_excluding_self`, against Algorithm A on the other p − 1 results
(needs p − 1 ≥ 3): the independent comparison the En formula assumes. The primary evaluation
stays the one against the full consensus; the leave-one-out scores are for a reviewer to see
whether the conclusion depends on the participant's own influence.

Boundaries: a score within a relative 1e-9 of a limit counts as on the limit (inclusive as the
criteria say), so a result that lies exactly on it in decimal is not pushed over by binary
rounding ((1.1 − 1.0) / 0.05 is 2.0000000000000018 in floating point).

JSON input of `daq uncertainty compare DATA.json` (`compare_json`):

    {
      "title": "ILC gauge block 2025",             optional, echoed
      "unit": "mm",                                 optional: the unit results are reported in
      "participants": [                             at least 1 with a reference, 3 for a consensus
        {"id": "lab A", "value": 10.02, "U": 0.04, "k": 2},
        {"id": "lab B", "value": 10012, "U": 30, "unit": "um"},   converted to "unit"
        {"id": 7, "value": 9.97}                    U absent: no En / ζ for this participant
      ],
      "reference": {"value": 10.00, "U": 0.02, "k": 2, "description": "NMI certificate 123"},
                                                    optional; absent or null: Algorithm A consensus
      "sigma_pt": 0.05                              optional: a number in "unit", or "robust" for the
    }                                               s* of this round; absent: s* for a consensus,
                                                    no z scores with a reference value
    k defaults to 2 everywhere; U must be > 0 for a participant and >= 0 for the reference.

The output (`ComparisonResult.to_dict`) gives the assigned value with u, U (k = 2) and how it was
obtained (with the Algorithm A details for a consensus), σ_pt and how it was obtained, the
criteria used, and per participant: id, value, U, k, U_k2, u, in_consensus, deviation, En, ζ, z,
z′ with an evaluation each, and the leave-one-out En and ζ. Scores that cannot be computed are
null with a note saying why: never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from daq.errors import ConfigError
from daq.units import Q_, magnitude_in, parse_unit
from results.robust_statistics import (
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_TOLERANCE,
    MINIMUM_RESULTS,
    AlgorithmAResult,
    algorithm_a,
    consensus_standard_uncertainty,
)

Evaluation = Literal["satisfactory", "questionable", "unsatisfactory"]

EN_LIMIT = 1.0
"""|En| <= 1 satisfactory, > 1 unsatisfactory (ISO 13528:2022 §9.7)."""
WARNING_LIMIT = 2.0
"""|z|, |z'|, |zeta| <= 2 satisfactory (ISO 13528:2022 §9.4-9.6; ISO/IEC 17043:2010 B.4)."""
ACTION_LIMIT = 3.0
"""|z|, |z'|, |zeta| >= 3 unsatisfactory; in between questionable."""
NEGLIGIBLE_U_RATIO = 0.3
"""u(x_pt) <= 0.3 sigma_pt: the uncertainty of the assigned value is negligible (ISO 13528:2022 §9.2)."""
EN_COVERAGE_FACTOR = 2.0
"""En uses expanded uncertainties at k = 2 on both sides."""
SMALL_CONSENSUS = 12
"""Below this many results a consensus is flagged as imprecise (our threshold; ISO 13528:2022 §5.4
discusses small numbers of participants without fixing one)."""
_LIMIT_SLACK = 1e-9

CRITERIA: dict[str, str] = {
    "En": "|En| <= 1 satisfactory; |En| > 1 unsatisfactory (ISO 13528:2022 9.7)",
    "zeta": "|zeta| <= 2 satisfactory; 2 < |zeta| < 3 questionable; |zeta| >= 3 unsatisfactory (ISO 13528:2022 9.6)",
    "z": "|z| <= 2 satisfactory; 2 < |z| < 3 questionable; |z| >= 3 unsatisfactory "
    "(ISO 13528:2022 9.4; ISO/IEC 17043:2010 B.4)",
    "z_prime": "as z, with sigma_pt replaced by sqrt(sigma_pt^2 + u(x_pt)^2) (ISO 13528:2022 9.5)",
}


# -- scores ------------------------------------------------------------------------------------


def _finite(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return float(value)


def _non_negative(value: float, what: str) -> float:
    number = _finite(value, what)
    if number < 0:
        raise ValueError(f"{what} must be >= 0, got {value!r}")
    return number


def en_number(x: float, U_x: float, x_pt: float, U_pt: float) -> float:
    """En = (x − x_pt) / √(U_x² + U_pt²) with both U expanded at k = 2 (ISO 13528:2022 §9.7)."""
    x, x_pt = _finite(x, "x"), _finite(x_pt, "x_pt")
    U_x, U_pt = _non_negative(U_x, "U_x"), _non_negative(U_pt, "U_pt")
    denominator = math.hypot(U_x, U_pt)
    if denominator == 0:
        raise ValueError("En needs a non-zero uncertainty on at least one side")
    return (x - x_pt) / denominator


def zeta_score(x: float, u_x: float, x_pt: float, u_pt: float) -> float:
    """ζ = (x − x_pt) / √(u_x² + u_pt²) with standard uncertainties (ISO 13528:2022 §9.6)."""
    x, x_pt = _finite(x, "x"), _finite(x_pt, "x_pt")
    u_x, u_pt = _non_negative(u_x, "u_x"), _non_negative(u_pt, "u_pt")
    denominator = math.hypot(u_x, u_pt)
    if denominator == 0:
        raise ValueError("zeta needs a non-zero uncertainty on at least one side")
    return (x - x_pt) / denominator


def z_score(x: float, x_pt: float, sigma_pt: float) -> float:
    """z = (x − x_pt) / σ_pt (ISO 13528:2022 §9.4)."""
    x, x_pt, sigma_pt = _finite(x, "x"), _finite(x_pt, "x_pt"), _finite(sigma_pt, "sigma_pt")
    if sigma_pt <= 0:
        raise ValueError(f"sigma_pt must be > 0, got {sigma_pt!r}")
    return (x - x_pt) / sigma_pt


def z_prime_score(x: float, x_pt: float, sigma_pt: float, u_pt: float) -> float:
    """z′ = (x − x_pt) / √(σ_pt² + u(x_pt)²) (ISO 13528:2022 §9.5): z widened for u(x_pt)."""
    sigma_pt, u_pt = _finite(sigma_pt, "sigma_pt"), _non_negative(u_pt, "u_pt")
    if sigma_pt <= 0:
        raise ValueError(f"sigma_pt must be > 0, got {sigma_pt!r}")
    return z_score(x, x_pt, math.hypot(sigma_pt, u_pt))


def evaluate_en(en: float) -> Evaluation:
    """Satisfactory when |En| <= 1, else unsatisfactory (ISO 13528:2022 §9.7)."""
    if abs(_finite(en, "En")) <= EN_LIMIT * (1 + _LIMIT_SLACK):
        return "satisfactory"
    return "unsatisfactory"


def evaluate_z(score: float) -> Evaluation:
    """Criteria for z, z′ and ζ: <= 2 satisfactory, < 3 questionable, >= 3 unsatisfactory."""
    magnitude = abs(_finite(score, "score"))
    if magnitude <= WARNING_LIMIT * (1 + _LIMIT_SLACK):
        return "satisfactory"
    if magnitude < ACTION_LIMIT * (1 - _LIMIT_SLACK):
        return "questionable"
    return "unsatisfactory"


# -- the comparison ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Participant:
    """One laboratory's result with the expanded uncertainty it stated (U may be absent in a PT)."""

    id: str
    value: float
    U: float | None = None
    k: float = 2.0

    @property
    def u(self) -> float | None:
        return None if self.U is None else self.U / self.k


@dataclass(frozen=True)
class ReferenceValue:
    """An assigned value from outside the participants: reference laboratory, certified value."""

    value: float
    U: float
    k: float = 2.0
    description: str = ""

    @property
    def u(self) -> float:
        return self.U / self.k


@dataclass(frozen=True)
class AssignedValue:
    value: float
    u: float
    method: Literal["reference", "consensus"]
    description: str
    U_stated: float | None = None
    """For a reference value: the U as stated (at k_stated)."""
    k_stated: float | None = None
    algorithm_a: AlgorithmAResult | None = None

    @property
    def U(self) -> float:
        """Expanded at k = 2, as En uses it."""
        return EN_COVERAGE_FACTOR * self.u

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "u": self.u,
            "U": self.U,
            "k": EN_COVERAGE_FACTOR,
            "method": self.method,
            "description": self.description,
        }
        if self.U_stated is not None:
            out["U_stated"] = self.U_stated
            out["k_stated"] = self.k_stated
        if self.algorithm_a is not None:
            out["algorithm_a"] = self.algorithm_a.to_dict()
        return out


@dataclass(frozen=True)
class ParticipantScores:
    id: str
    value: float
    U: float | None
    k: float
    in_consensus: bool
    """True when this result is one of those the consensus assigned value was computed from."""
    deviation: float
    """x − x_pt (ISO 13528:2022 §9.3)."""
    En: float | None = None
    En_evaluation: Evaluation | None = None
    zeta: float | None = None
    zeta_evaluation: Evaluation | None = None
    z: float | None = None
    z_evaluation: Evaluation | None = None
    z_prime: float | None = None
    z_prime_evaluation: Evaluation | None = None
    assigned_excluding_self: float | None = None
    """Algorithm A x* of the other participants (consensus only)."""
    u_assigned_excluding_self: float | None = None
    En_excluding_self: float | None = None
    En_excluding_self_evaluation: Evaluation | None = None
    zeta_excluding_self: float | None = None
    zeta_excluding_self_evaluation: Evaluation | None = None
    notes: tuple[str, ...] = ()

    @property
    def u(self) -> float | None:
        return None if self.U is None else self.U / self.k

    @property
    def U_k2(self) -> float | None:
        return None if self.U is None else EN_COVERAGE_FACTOR * self.U / self.k

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "value": self.value,
            "U": self.U,
            "k": self.k,
            "U_k2": self.U_k2,
            "u": self.u,
            "in_consensus": self.in_consensus,
            "deviation": self.deviation,
            "En": self.En,
            "En_evaluation": self.En_evaluation,
            "zeta": self.zeta,
            "zeta_evaluation": self.zeta_evaluation,
            "z": self.z,
            "z_evaluation": self.z_evaluation,
            "z_prime": self.z_prime,
            "z_prime_evaluation": self.z_prime_evaluation,
            "assigned_excluding_self": self.assigned_excluding_self,
            "u_assigned_excluding_self": self.u_assigned_excluding_self,
            "En_excluding_self": self.En_excluding_self,
            "En_excluding_self_evaluation": self.En_excluding_self_evaluation,
            "zeta_excluding_self": self.zeta_excluding_self,
            "zeta_excluding_self_evaluation": self.zeta_excluding_self_evaluation,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ComparisonResult:
    assigned: AssignedValue
    participants: tuple[ParticipantScores, ...]
    unit: str | None = None
    sigma_pt: float | None = None
    sigma_pt_method: str | None = None
    participant_statistics: AlgorithmAResult | None = None
    """Algorithm A of the participants' results when a reference value is the assigned value."""
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def u_over_sigma_pt(self) -> float | None:
        if self.sigma_pt is None:
            return None
        return self.assigned.u / self.sigma_pt

    def to_dict(self) -> dict[str, Any]:
        ratio = self.u_over_sigma_pt
        return {
            "unit": self.unit,
            "assigned_value": self.assigned.to_dict(),
            "sigma_pt": None if self.sigma_pt is None else {"value": self.sigma_pt, "method": self.sigma_pt_method},
            "u_x_pt_over_sigma_pt": ratio,
            "u_x_pt_negligible": None if ratio is None else ratio <= NEGLIGIBLE_U_RATIO,
            "participant_statistics": None
            if self.participant_statistics is None
            else self.participant_statistics.to_dict(),
            "criteria": dict(CRITERIA),
            "participants": [p.to_dict() for p in self.participants],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def _algorithm_a_or_error(
    values: Sequence[float], *, source: str, field: str, fix: str, tolerance: float, max_iterations: int
) -> AlgorithmAResult:
    try:
        return algorithm_a(values, tolerance=tolerance, max_iterations=max_iterations)
    except ValueError as exc:
        raise ConfigError(source, field, str(exc), fix) from exc


def compare(
    participants: Sequence[Participant],
    reference: ReferenceValue | None = None,
    sigma_pt: float | Literal["robust"] | None = None,
    *,
    unit: str | None = None,
    source: str = "<comparison>",
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> ComparisonResult:
    """Score every participant against a reference value, or against the Algorithm A consensus.

    `sigma_pt`: a number (given by the scheme), "robust" (s* of this round, ISO 13528 §8.6) or
    None (s* for a consensus; no z scores with a reference value). Problems with the data that
    make a score meaningless (too few results for a consensus, more than half identical, a
    duplicate id) raise ConfigError naming the field, as the JSON contract requires.
    """
    _check_participants(participants, reference, source)
    values = [p.value for p in participants]
    warnings: list[str] = []
    notes: list[str] = []

    consensus_stats: AlgorithmAResult | None = None
    participant_stats: AlgorithmAResult | None = None
    if reference is None:
        consensus_stats = _algorithm_a_or_error(
            values,
            source=source,
            field="participants",
            fix='give a reference value ("reference": {"value": ..., "U": ...}) or more distinct results',
            tolerance=tolerance,
            max_iterations=max_iterations,
        )
        assigned = AssignedValue(
            value=consensus_stats.robust_mean,
            u=consensus_stats.u_robust_mean,
            method="consensus",
            description=(
                f"robust mean x* of the {consensus_stats.p} participants' results by ISO 13528:2022 Algorithm A "
                f"(Annex C.3, {consensus_stats.iterations} iterations), u(x_pt) = 1.25 s*/sqrt(p) (7.7.3)"
            ),
            algorithm_a=consensus_stats,
        )
        notes.append(
            "every participant's own result is part of the consensus (in_consensus = true); En and zeta "
            "against it ignore that correlation, so En_excluding_self / zeta_excluding_self are given against "
            "Algorithm A of the other participants"
        )
        if consensus_stats.p < SMALL_CONSENSUS:
            warnings.append(
                f"consensus of only {consensus_stats.p} results: robust estimates from fewer than "
                f"{SMALL_CONSENSUS} results are imprecise (ISO 13528:2022 5.4); prefer a reference value"
            )
    else:
        assigned = AssignedValue(
            value=reference.value,
            u=reference.u,
            method="reference",
            description=reference.description or "reference value given in the input",
            U_stated=reference.U,
            k_stated=reference.k,
        )
        if len(values) >= MINIMUM_RESULTS:
            try:
                participant_stats = algorithm_a(values, tolerance=tolerance, max_iterations=max_iterations)
            except ValueError:
                participant_stats = None

    sigma_value: float | None = None
    sigma_method: str | None = None
    if isinstance(sigma_pt, str):
        if sigma_pt != "robust":
            raise ConfigError(source, "sigma_pt", f"unknown value {sigma_pt!r}", 'give a number or "robust"')
        stats = (
            consensus_stats
            or participant_stats
            or _algorithm_a_or_error(
                values,
                source=source,
                field="sigma_pt",
                fix="give sigma_pt as a number",
                tolerance=tolerance,
                max_iterations=max_iterations,
            )
        )
        sigma_value = stats.robust_sd
        sigma_method = "robust standard deviation s* of this round's results, Algorithm A (ISO 13528:2022 8.6)"
    elif sigma_pt is not None:
        try:
            sigma_value = _finite(sigma_pt, "sigma_pt")
        except ValueError as exc:
            raise ConfigError(source, "sigma_pt", str(exc), "give sigma_pt as a positive number") from exc
        if sigma_value <= 0:
            raise ConfigError(
                source, "sigma_pt", f"must be > 0, got {sigma_pt!r}", "give sigma_pt as a positive number"
            )
        sigma_method = "given in the input"
    elif consensus_stats is not None:
        sigma_value = consensus_stats.robust_sd
        sigma_method = (
            "robust standard deviation s* of this round's results, Algorithm A (ISO 13528:2022 8.6); "
            "not given in the input"
        )
    else:
        notes.append('no sigma_pt given: z and z\' are not computed (give "sigma_pt": a number or "robust")')

    if sigma_value is not None and assigned.u > NEGLIGIBLE_U_RATIO * sigma_value:
        warnings.append(
            f"u(x_pt) = {assigned.u:.3g} exceeds 0.3 sigma_pt = {NEGLIGIBLE_U_RATIO * sigma_value:.3g}: the "
            "uncertainty of the assigned value is not negligible (ISO 13528:2022 9.2); judge by z' or zeta, not z"
        )

    scores = tuple(
        _score_participant(
            i,
            participants,
            assigned,
            sigma_value,
            in_consensus=reference is None,
            tolerance=tolerance,
            max_iterations=max_iterations,
        )
        for i in range(len(participants))
    )
    return ComparisonResult(
        assigned=assigned,
        participants=scores,
        unit=unit,
        sigma_pt=sigma_value,
        sigma_pt_method=sigma_method,
        participant_statistics=participant_stats,
        warnings=tuple(warnings),
        notes=tuple(notes),
    )


def _check_participants(participants: Sequence[Participant], reference: ReferenceValue | None, source: str) -> None:
    if len(participants) == 0:
        raise ConfigError(source, "participants", "no participants", "list at least one participant's result")
    seen: dict[str, int] = {}
    for i, p in enumerate(participants):
        where = f"participants[{i}]"
        if p.id in seen:
            raise ConfigError(
                source,
                f"{where}.id",
                f"duplicate id {p.id!r} (also participants[{seen[p.id]}])",
                "give every participant a unique id",
            )
        seen[p.id] = i
        for name, value in (("value", p.value), ("k", p.k)) + ((("U", p.U),) if p.U is not None else ()):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(source, f"{where}.{name}", f"must be a finite number, got {value!r}", "give a number")
        if p.U is not None and p.U <= 0:
            raise ConfigError(
                source,
                f"{where}.U",
                f"must be > 0, got {p.U!r}",
                "give the expanded uncertainty the participant stated, or leave U out",
            )
        if p.k <= 0:
            raise ConfigError(source, f"{where}.k", f"must be > 0, got {p.k!r}", "give the coverage factor, e.g. 2")
    if reference is not None:
        for name, value in (("value", reference.value), ("U", reference.U), ("k", reference.k)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(
                    source, f"reference.{name}", f"must be a finite number, got {value!r}", "give a number"
                )
        if reference.U < 0:
            raise ConfigError(
                source,
                "reference.U",
                f"must be >= 0, got {reference.U!r}",
                "give the expanded uncertainty of the reference value",
            )
        if reference.k <= 0:
            raise ConfigError(
                source, "reference.k", f"must be > 0, got {reference.k!r}", "give the coverage factor, e.g. 2"
            )


def _score_participant(
    index: int,
    participants: Sequence[Participant],
    assigned: AssignedValue,
    sigma_pt: float | None,
    *,
    in_consensus: bool,
    tolerance: float,
    max_iterations: int,
) -> ParticipantScores:
    p = participants[index]
    notes: list[str] = []
    deviation = p.value - assigned.value
    scores: dict[str, Any] = {}

    U_k2 = None if p.U is None else EN_COVERAGE_FACTOR * p.U / p.k
    if p.U is None:
        notes.append("no U stated: En and zeta not computed")
    else:
        assert p.u is not None and U_k2 is not None
        if p.k != EN_COVERAGE_FACTOR:
            notes.append(f"U stated at k = {p.k:g}; En uses U_k2 = 2 U / k = {U_k2:.6g}")
        scores["En"] = en_number(p.value, U_k2, assigned.value, assigned.U)
        scores["En_evaluation"] = evaluate_en(scores["En"])
        scores["zeta"] = zeta_score(p.value, p.u, assigned.value, assigned.u)
        scores["zeta_evaluation"] = evaluate_z(scores["zeta"])

    if sigma_pt is not None:
        scores["z"] = z_score(p.value, assigned.value, sigma_pt)
        scores["z_evaluation"] = evaluate_z(scores["z"])
        scores["z_prime"] = z_prime_score(p.value, assigned.value, sigma_pt, assigned.u)
        scores["z_prime_evaluation"] = evaluate_z(scores["z_prime"])

    if in_consensus:
        others = [q.value for j, q in enumerate(participants) if j != index]
        if len(others) < MINIMUM_RESULTS:
            notes.append(f"En/zeta excluding self need at least {MINIMUM_RESULTS} other results")
        else:
            try:
                loo = algorithm_a(others, tolerance=tolerance, max_iterations=max_iterations)
            except ValueError as exc:
                notes.append(f"consensus excluding self not computed: {exc}")
            else:
                u_loo = consensus_standard_uncertainty(loo.robust_sd, loo.p)
                scores["assigned_excluding_self"] = loo.robust_mean
                scores["u_assigned_excluding_self"] = u_loo
                if p.U is not None:
                    assert p.u is not None and U_k2 is not None
                    en = en_number(p.value, U_k2, loo.robust_mean, EN_COVERAGE_FACTOR * u_loo)
                    zeta = zeta_score(p.value, p.u, loo.robust_mean, u_loo)
                    scores["En_excluding_self"] = en
                    scores["En_excluding_self_evaluation"] = evaluate_en(en)
                    scores["zeta_excluding_self"] = zeta
                    scores["zeta_excluding_self_evaluation"] = evaluate_z(zeta)

    return ParticipantScores(
        id=p.id,
        value=p.value,
        U=p.U,
        k=p.k,
        in_consensus=in_consensus,
        deviation=deviation,
        notes=tuple(notes),
        **scores,
    )


# -- the JSON contract -------------------------------------------------------------------------

_TOP_KEYS = frozenset({"participants", "reference", "sigma_pt", "unit", "title", "comment"})
_PARTICIPANT_KEYS = frozenset({"id", "value", "U", "k", "unit"})
_REFERENCE_KEYS = frozenset({"value", "U", "k", "unit", "description"})


def _check_keys(obj: Mapping[str, Any], allowed: frozenset[str], source: str, where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ConfigError(
            source,
            f"{where}.{unknown[0]}" if where else unknown[0],
            f"unknown key {unknown[0]!r}",
            "use only " + ", ".join(sorted(allowed)),
        )


def _json_number(obj: Mapping[str, Any], key: str, source: str, where: str, *, default: float | None = None) -> float:
    field_name = f"{where}.{key}"
    if key not in obj or obj[key] is None:
        if default is not None:
            return default
        raise ConfigError(source, field_name, "missing", f"give {key} as a number")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            source, field_name, f"must be a number, got {value!r}", f"write {key} as a JSON number, not a string"
        )
    if not math.isfinite(value):
        raise ConfigError(source, field_name, f"must be finite, got {value!r}", f"give {key} as a finite number")
    return float(value)


def _to_unit(
    value: float, U: float | None, entry_unit: Any, unit: str | None, source: str, where: str
) -> tuple[float, float | None]:
    """Convert an entry's value (an absolute quantity) and U (a difference) to the report unit."""
    if entry_unit is None:
        return value, U
    if not isinstance(entry_unit, str):
        raise ConfigError(source, f"{where}.unit", f"must be a unit name, got {entry_unit!r}", 'write e.g. "mm"')
    if unit is None:
        raise ConfigError(
            source,
            "unit",
            f"{where} has a unit but the comparison has none",
            'give the unit results are reported in, e.g. "unit": "mm"',
        )
    from_unit = parse_unit(entry_unit, source=source, field=f"{where}.unit")
    converted = magnitude_in(Q_(value, from_unit), unit, source=source, field=f"{where}.unit")
    if U is None:
        return converted, None
    # An uncertainty is a difference: scale it, never offset it (degC -> K must not add 273.15).
    zero = magnitude_in(Q_(0.0, from_unit), unit, source=source, field=f"{where}.unit")
    one = magnitude_in(Q_(1.0, from_unit), unit, source=source, field=f"{where}.unit")
    scale = one - zero  # exactly `one` for the usual multiplicative units (um -> mm)
    return converted, U * scale


def compare_json(data: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Run a comparison described by the JSON contract in this module's docstring.

    Returns a JSON-ready dict (floats, strings, lists, None; never NaN). Any mistake in the input
    raises ConfigError naming `source`, the field (e.g. "participants[2].U") and the fix.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            source,
            "<top level>",
            f"must be a JSON object, got {type(data).__name__}",
            'write {"participants": [...], "reference": {...}}',
        )
    _check_keys(data, _TOP_KEYS, source, "")

    unit = data.get("unit")
    if unit is not None:
        if not isinstance(unit, str) or not unit.strip():
            raise ConfigError(source, "unit", f"must be a unit name, got {unit!r}", 'write e.g. "unit": "mm"')
        parse_unit(unit, source=source, field="unit")

    raw_participants = data.get("participants")
    if not isinstance(raw_participants, list) or not raw_participants:
        raise ConfigError(
            source,
            "participants",
            "missing or empty",
            'give a list: "participants": [{"id": "lab A", "value": 10.02, "U": 0.04}, ...]',
        )
    participants: list[Participant] = []
    for i, entry in enumerate(raw_participants):
        where = f"participants[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(
                source, where, f"must be an object, got {entry!r}", 'write {"id": "lab A", "value": 10.02, "U": 0.04}'
            )
        _check_keys(entry, _PARTICIPANT_KEYS, source, where)
        raw_id = entry.get("id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
            raise ConfigError(
                source,
                f"{where}.id",
                f"missing or not a name: {raw_id!r}",
                "give each participant an id (a name or a number)",
            )
        value = _json_number(entry, "value", source, where)
        U = None if entry.get("U") is None else _json_number(entry, "U", source, where)
        k = _json_number(entry, "k", source, where, default=2.0)
        if U is not None and U <= 0:
            raise ConfigError(
                source,
                f"{where}.U",
                f"must be > 0, got {U!r}" + (" (a negative uncertainty)" if U < 0 else ""),
                "give the expanded uncertainty the participant stated, or leave U out",
            )
        if k <= 0:
            raise ConfigError(source, f"{where}.k", f"must be > 0, got {k!r}", "give the coverage factor, e.g. 2")
        value, U = _to_unit(value, U, entry.get("unit"), unit, source, where)
        participants.append(Participant(id=str(raw_id).strip(), value=value, U=U, k=k))

    reference: ReferenceValue | None = None
    raw_reference = data.get("reference")
    if raw_reference is not None:
        if not isinstance(raw_reference, Mapping):
            raise ConfigError(
                source,
                "reference",
                f"must be an object, got {raw_reference!r}",
                'write "reference": {"value": 10.00, "U": 0.02, "k": 2} or leave it out for a consensus',
            )
        _check_keys(raw_reference, _REFERENCE_KEYS, source, "reference")
        ref_value = _json_number(raw_reference, "value", source, "reference")
        ref_U = _json_number(raw_reference, "U", source, "reference")
        ref_k = _json_number(raw_reference, "k", source, "reference", default=2.0)
        if ref_U < 0:
            raise ConfigError(
                source,
                "reference.U",
                f"must be >= 0, got {ref_U!r} (a negative uncertainty)",
                "give the expanded uncertainty of the reference value",
            )
        if ref_k <= 0:
            raise ConfigError(source, "reference.k", f"must be > 0, got {ref_k!r}", "give the coverage factor, e.g. 2")
        description = raw_reference.get("description", "")
        if not isinstance(description, str):
            raise ConfigError(source, "reference.description", "must be text", "write a short text or leave it out")
        ref_value, ref_U_converted = _to_unit(ref_value, ref_U, raw_reference.get("unit"), unit, source, "reference")
        assert ref_U_converted is not None
        reference = ReferenceValue(value=ref_value, U=ref_U_converted, k=ref_k, description=description)

    raw_sigma = data.get("sigma_pt")
    sigma_pt: float | Literal["robust"] | None
    if raw_sigma is None:
        sigma_pt = None
    elif raw_sigma == "robust":
        sigma_pt = "robust"
    elif isinstance(raw_sigma, bool) or not isinstance(raw_sigma, int | float):
        raise ConfigError(
            source,
            "sigma_pt",
            f'must be a number or "robust", got {raw_sigma!r}',
            'give the standard deviation for proficiency assessment, e.g. "sigma_pt": 0.05',
        )
    else:
        sigma_pt = float(raw_sigma)
        if not math.isfinite(sigma_pt) or sigma_pt <= 0:
            raise ConfigError(
                source,
                "sigma_pt",
                f"must be a positive finite number, got {raw_sigma!r}",
                'give the standard deviation for proficiency assessment, e.g. "sigma_pt": 0.05',
            )

    title = data.get("title")
    if title is not None and not isinstance(title, str):
        raise ConfigError(source, "title", "must be text", "write a short text or leave it out")

    result = compare(participants, reference, sigma_pt, unit=unit, source=source)
    out = result.to_dict()
    if title is not None:
        out = {"title": title, **out}
    return out
