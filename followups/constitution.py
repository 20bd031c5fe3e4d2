"""The judgement of 中医体质分类与判定 (ZYYXH/T 157-2009) from the nine transformed scores (0–100).

- 平和质: 是 when 平和 ≥ 60 and every biased type < 30; 基本是 when 平和 ≥ 60 and every biased type < 40;
  否 otherwise.
- each biased type: 是 ≥ 40, 倾向是 30–39.99, 否 < 30.
- primary constitution: 平和质 when it is 是 or 基本是; otherwise the highest-scoring biased type judged
  是, or 倾向是 when none is 是; none when nothing reaches 倾向是. Secondary: the other biased types judged
  是 or 倾向是, highest score first (with 平和质 基本是 these are its tendencies). Equal scores keep the
  standard's order of the types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from followups.builtin.constitution import BIASED, CONSTITUTIONS
from followups.models.constitution import ConstitutionJudgement as Judgement

BALANCED_MINIMUM = Decimal(60)
YES_MINIMUM = Decimal(40)
TENDING_MINIMUM = Decimal(30)


@dataclass(frozen=True)
class ConstitutionResult:
    scores: dict[str, float]
    judgements: dict[str, str]
    primary: str  # a constitution code, or "" when none reaches 倾向是
    secondary: list[str]


def _biased_judgement(score: Decimal) -> str:
    if score >= YES_MINIMUM:
        return Judgement.YES
    if score >= TENDING_MINIMUM:
        return Judgement.TENDING
    return Judgement.NO


def constitution_judge(scores: Mapping[str, float | Decimal]) -> ConstitutionResult:
    """The standard's judgement of the nine transformed scores, keyed by constitution code."""
    missing = [code for code in CONSTITUTIONS if code not in scores]
    if missing:
        raise ValueError(f"Scores missing for {', '.join(missing)}.")
    values = {code: Decimal(str(scores[code])) for code in CONSTITUTIONS}
    judgements = {code: _biased_judgement(values[code]) for code in BIASED}
    highest_biased = max(values[code] for code in BIASED)
    if values["balanced"] >= BALANCED_MINIMUM and highest_biased < TENDING_MINIMUM:
        balanced = Judgement.YES
    elif values["balanced"] >= BALANCED_MINIMUM and highest_biased < YES_MINIMUM:
        balanced = Judgement.BASICALLY
    else:
        balanced = Judgement.NO
    judgements = {"balanced": balanced, **judgements}
    ranked = sorted(BIASED, key=lambda code: -values[code])  # stable: ties keep the standard's order
    leaning = [code for code in ranked if judgements[code] in (Judgement.YES, Judgement.TENDING)]
    if balanced != Judgement.NO:
        primary = "balanced"
    else:
        confirmed = [code for code in leaning if judgements[code] == Judgement.YES]
        primary = (confirmed or leaning or [""])[0]
    return ConstitutionResult(
        scores={code: float(values[code]) for code in CONSTITUTIONS},
        judgements={code: str(judgement) for code, judgement in judgements.items()},
        primary=primary,
        secondary=[code for code in leaning if code != primary],
    )
