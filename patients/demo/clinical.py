"""The clinical record of one demo patient: encounters with their diagnoses, procedures, lab results,
medication orders and charges, and the departments that saw the patient.

Times are moments (whole minutes since the anchor's midnight, see `base.moment`) until they are
written into a row as text.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import NamedTuple

from patients import models
from patients.demo import data
from patients.demo.base import FIRST_DAY, LAST_DAY, Doctor, Weighted, World, day_of, moment, money, new_uuid, stamp

# Only encounters carry an external id: a re-import from the HIS matches on it, and the rows below
# follow their encounter. Leaving `external_id` out writes NULL, which the unique constraint ignores.
FIELDS: dict[type, tuple[str, ...]] = {
    models.Encounter: (
        "id", "uuid", "created_at", "updated_at", "source_system", "external_id", "patient_id", "kind", "status",
        "encounter_number", "department_id", "doctor_id", "doctor_name", "ward", "bed", "started_at", "ended_at",
        "chief_complaint",
    ),
    models.Diagnosis: (
        "uuid", "created_at", "updated_at", "source_system", "patient_id", "encounter_id", "system", "code", "name",
        "is_primary", "diagnosed_at", "doctor_id",
    ),
    models.Procedure: (
        "uuid", "created_at", "updated_at", "source_system", "patient_id", "encounter_id", "system", "code", "name",
        "is_surgery", "body_site", "performed_at", "performer_id", "performer_name", "note",
    ),
    models.LabResult: (
        "uuid", "created_at", "updated_at", "source_system", "patient_id", "encounter_id", "panel_code", "panel_name",
        "code_system", "code", "name", "value", "value_numeric", "unit", "reference_range", "abnormal_flag",
        "observed_at", "note",
    ),
    models.MedicationOrder: (
        "uuid", "created_at", "updated_at", "source_system", "patient_id", "encounter_id", "kind", "status", "name",
        "code", "dose", "route", "frequency", "days", "herbs", "decoction_instructions", "ordered_at", "prescriber_id",
    ),
    models.Charge: (
        "uuid", "created_at", "updated_at", "source_system", "patient_id", "encounter_id", "category", "amount",
        "charged_at",
    ),
}  # fmt: skip

_HIS = data.SOURCE_SYSTEM
_NUMBER_PREFIX = {"outpatient": "MZ", "emergency": "JZ", "inpatient": "ZY", "physical_exam": "TJ"}
_NO_HERBS: list[dict] = []
_KINDS = Weighted(data.ENCOUNTER_KINDS)
_COUNTS = Weighted(data.ENCOUNTER_COUNTS)
_SHORT_COURSES = frozenset({"acute", "injury", "pregnancy", "postpartum"})
_CHILD_UNSUITABLE = frozenset({"小针刀", "温针灸", "穴位注射", "刮痧"})


class _Visit(NamedTuple):
    """One encounter as its child rows need it."""

    id: int
    patient_id: int
    doctor: Doctor
    department: str
    kind: str
    start: int  # moment
    text: str  # `start` as written
    stay: int  # days in hospital, 0 unless admitted
    child: bool


class _Condition:
    """A scenario with the choices generation makes from it worked out once."""

    def __init__(self, scenario: data.Scenario):
        self.scenario = scenario
        self.kinds = scenario.kinds
        self.chronic = scenario.chronic
        self.tag = scenario.tag
        self.history = scenario.history
        self.low_age, self.high_age = scenario.age_range
        children = [(code, weight) for code, weight in scenario.departments if code in data.CHILD_DEPARTMENTS]
        adults = [(code, weight) for code, weight in scenario.departments if code != "EK"]
        # A condition with no department of the right kind is still seen where it is usually seen.
        self.departments = {
            True: Weighted(children or scenario.departments),
            False: Weighted(adults or scenario.departments),
        }
        self.syndromes = [(data.SYNDROME_CODES[name], name) for name in scenario.syndromes]
        self.patents = {child: _for_age(data.PATENTS, scenario.patents, child) for child in (True, False)}
        self.western = {child: _for_age(data.WESTERN, scenario.western, child) for child in (True, False)}
        own = [data.TECHNIQUES[name] for name in scenario.techniques]
        self.techniques = {
            code: [t for t in own if code in t.departments]
            or [data.TECHNIQUES[n] for n in data.DEFAULT_TECHNIQUES.get(code, ())]
            for code in data.CHILD_DEPARTMENTS
            | data.PROCEDURE_DEPARTMENTS
            | {code for code, _w in scenario.departments}
        }
        self.bias = {test: (direction, chance) for test, direction, chance in scenario.lab_bias}

    def fits(self, age: int) -> bool:
        return self.low_age <= age <= self.high_age


def _for_age(table: dict[str, data.Drug], names: tuple[str, ...], child: bool) -> list[data.Drug]:
    audiences = ("any", "child") if child else ("any", "adult")
    return [table[name] for name in names if table[name].audience in audiences]


_CONDITIONS = [_Condition(scenario) for scenario in data.SCENARIOS]
_EXAM = _Condition(data.PHYSICAL_EXAM)
_FALLBACK = next(c for c in _CONDITIONS if c.scenario.icd[0] == "R53")
_PICKERS = {
    (band, sex, kind): Weighted(
        (c, c.scenario.ages[band]) for c in _CONDITIONS if kind in c.kinds and c.scenario.sex in ("", sex)
    )
    for band in range(4)
    for sex in ("male", "female")
    for kind in ("outpatient", "emergency", "inpatient")
}
_RANGES = {
    (key, sex): f"<{high:g}" if low is None else f"{low:g}-{high:g}"
    for key, test in data.LAB_TESTS.items()
    for sex in ("male", "female")
    for low, high in [test.female if sex == "female" else test.male]
}


def _band(age: int) -> int:
    return 0 if age < 14 else 1 if age < 40 else 2 if age < 60 else 3


def _problems(rng: random.Random, band: int, sex: str, age: int) -> list[_Condition]:
    """The one to three conditions that bring this patient back to the hospital."""
    picker, problems = _PICKERS[band, sex, "outpatient"], []
    wanted = 1 if rng.random() < 0.5 else 2 if rng.random() < 0.7 else 3
    for _attempt in range(wanted * 4):
        condition = picker.pick(rng)
        if condition.fits(age) and condition not in problems:
            problems.append(condition)
            if len(problems) == wanted:
                break
    return problems or [_FALLBACK]


def _condition(rng: random.Random, kind: str, problems, band: int, sex: str, age: int) -> tuple[_Condition, str]:
    if kind == "physical_exam":
        return _EXAM, kind
    own = [problem for problem in problems if kind in problem.kinds]
    if own and rng.random() < 0.75:
        return rng.choice(own), kind
    picker = _PICKERS[band, sex, kind]
    for _attempt in range(4):
        if picker:
            condition = picker.pick(rng)
            if condition.fits(age):
                return condition, kind
    return rng.choice(problems), "outpatient"


def encounters(
    rng: random.Random,
    world: World,
    rows: dict,
    *,
    patient_id: int,
    index: int,
    birth: dt.date,
    age: int,
    sex: str,
    next_id: int,
) -> tuple[int, int, int, list[_Condition]]:
    """Add the patient's encounters to `rows`; returns (next encounter id, first start, last end, conditions)."""
    band, born = _band(age), birth.toordinal()
    problems = _problems(rng, band, sex, age)
    first_day = max(FIRST_DAY, born + 1)
    days = sorted(rng.randint(first_day, LAST_DAY) for _ in range(_COUNTS.pick(rng)))
    previous_end, first_visit, last_visit, seen = first_day - 1, None, 0, {}
    for number, planned in enumerate(days):
        day = planned if planned > previous_end else previous_end + rng.randint(1, 14)
        if day > LAST_DAY:
            break
        condition, kind = _condition(rng, _KINDS.pick(rng), problems, band, sex, age)
        scenario, child = condition.scenario, day - born < 14 * 365
        code = condition.departments[child].pick(rng)
        doctor = rng.choice(world.doctors[code])
        surgery = None
        if kind == "inpatient" and code == "GS" and scenario.surgeries and rng.random() < scenario.surgery_chance:
            surgery = data.SURGERIES[rng.choice(scenario.surgeries)]
        start, end, stay, kind = _times(rng, kind, day, surgery is not None, condition)
        visit = _Visit(next_id, patient_id, doctor, code, kind, start, stamp(start), stay, child)
        end_text = stamp(end)
        inpatient = kind == "inpatient"
        rows[models.Encounter].append(
            (
                next_id, new_uuid(rng), visit.text, end_text, _HIS, f"E{index:08d}{number:02d}", patient_id, kind,
                "finished", f"{_NUMBER_PREFIX[kind]}{index:08d}{number:02d}", world.departments[code], doctor.id,
                doctor.name, f"{world.department_names[code]}病区" if inpatient else "",
                f"{rng.randint(1, 40)}床" if inpatient else "", visit.text, end_text,
                rng.choice(scenario.complaints).format(d=rng.choice(data.DURATIONS[scenario.course])),
            )
        )  # fmt: skip
        _diagnoses(rng, rows, condition, problems, visit)
        charges = {
            "registration": 2000 if kind == "emergency" else doctor.fee * 100 if kind == "outpatient" else 0,
            "treatment": _procedures(rng, rows, condition, visit, surgery if inpatient else None),
            "laboratory": _labs(rng, rows, condition, visit, sex),
            **_medications(rng, rows, condition, visit, day),
            "examination": _examination(rng, kind),
            "bed": stay * rng.randint(4500, 9000),
        }
        rows[models.Charge].extend(
            (new_uuid(rng), end_text, end_text, _HIS, patient_id, next_id, category, money(cents), end_text)
            for category, cents in charges.items()
            if cents
        )
        seen.setdefault(code, visit.text)
        if first_visit is None:
            first_visit = start
        last_visit, previous_end, next_id = end, day_of(end), next_id + 1
    rows[models.PatientDepartment].extend((patient_id, world.departments[code], when) for code, when in seen.items())
    return next_id, first_visit, last_visit, problems


def _times(rng: random.Random, kind: str, day: int, surgery: bool, condition: _Condition) -> tuple[int, int, int, str]:
    """(start, end, days in hospital, kind): clinic hours for outpatients, any hour for emergencies."""
    if kind == "inpatient":
        stay = min(20, max(7 if surgery else 3, round(rng.gauss(9, 4))), LAST_DAY - day)
        if stay >= 3:
            return moment(day, rng.randint(480, 1080)), moment(day + stay, rng.randint(540, 690)), stay, kind
        # Too close to the anchor for a stay that would already have ended: seen without admission.
        kind = "emergency" if "emergency" in condition.kinds else "outpatient"
    if kind == "emergency":
        duration = rng.randint(60, 360)
        start = moment(day, rng.randint(0, 1439 - duration) if day == LAST_DAY else rng.randint(0, 1439))
        return start, start + duration, 0, kind
    if kind == "physical_exam":
        start = moment(day, rng.randint(450, 570))
        return start, start + rng.randint(60, 150), 0, kind
    start = moment(day, rng.randint(480, 690) if rng.random() < 0.6 else rng.randint(840, 1020))
    return start, start + rng.randint(8, 25), 0, kind


def _diagnoses(rng: random.Random, rows: dict, condition: _Condition, problems, visit: _Visit) -> None:
    codes = [("icd10", *condition.scenario.icd, True)]
    if condition.scenario.tcm and rng.random() < 0.9:
        codes.append(("tcm_disease", *condition.scenario.tcm, False))
    if condition.syndromes and rng.random() < 0.9:
        codes.append(("tcm_syndrome", *rng.choice(condition.syndromes), False))
    if visit.kind != "physical_exam" and rng.random() < 0.25:
        # A chronic condition the patient also has is listed as a secondary western diagnosis.
        other = next((p for p in problems if p is not condition and p.chronic), None)
        if other is not None:
            codes.append(("icd10", *other.scenario.icd, False))
    text, doctor_id = visit.text, visit.doctor.id
    rows[models.Diagnosis].extend(
        (new_uuid(rng), text, text, _HIS, visit.patient_id, visit.id, *code, text, doctor_id) for code in codes
    )


def _procedures(rng: random.Random, rows: dict, condition: _Condition, visit: _Visit, surgery) -> int:
    """Add TCM techniques (and surgery); returns their price in cents."""
    out, cents, site, doctor = rows[models.Procedure], 0, condition.scenario.site, visit.doctor
    if surgery is not None:
        text = stamp(visit.start + rng.randint(1, 2) * 1440 + rng.randint(0, 300))
        note = "手术顺利，术后安返病房"
        row = ("icd9cm3", surgery.code, surgery.name, True, site, text, doctor.id, doctor.name, note)
        out.append((new_uuid(rng), text, text, _HIS, visit.patient_id, visit.id, *row))
        cents += surgery.price * 100
    techniques = condition.techniques.get(visit.department, ())
    if visit.child:
        techniques = [t for t in techniques if t.name not in _CHILD_UNSUITABLE]
    inpatient = visit.kind == "inpatient"
    chance = 0.9 if inpatient else 0.85 if visit.department in data.PROCEDURE_DEPARTMENTS else 0.25
    if not techniques or visit.kind == "physical_exam" or rng.random() >= chance:
        return cents
    sessions = max(1, visit.stay - 1)
    note = f"住院期间每日1次，共{sessions}次" if inpatient else ""
    text = stamp(visit.start + (1440 + rng.randint(0, 360) if inpatient else rng.randint(20, 45)))
    count = 1 if rng.random() < 0.5 else 2 if rng.random() < 0.7 else 3
    for technique in rng.sample(techniques, min(len(techniques), count)):
        row = (technique.system, technique.code, technique.name, False, site, text, doctor.id, doctor.name, note)
        out.append((new_uuid(rng), text, text, _HIS, visit.patient_id, visit.id, *row))
        cents += technique.price * 100 * sessions
    return cents


def _labs(rng: random.Random, rows: dict, condition: _Condition, visit: _Visit, sex: str) -> int:
    """Add lab results with values, ranges and flags that agree; returns the panels' price in cents."""
    scenario, kind = condition.scenario, visit.kind
    if kind == "physical_exam":
        panels = data.EXAM_PANELS
    elif kind == "inpatient":
        panels = tuple(dict.fromkeys(data.ADMISSION_PANELS + scenario.labs))
    elif scenario.labs and rng.random() < 0.4:
        panels = (scenario.labs[0], *(panel for panel in scenario.labs[1:] if rng.random() < 0.5))
    elif rng.random() < (0.5 if kind == "emergency" else data.EXAM_PANEL_CHANCE):
        panels = ("CBC",)
    else:
        return 0
    if kind == "inpatient":  # drawn the morning after admission
        observed = (visit.start // 1440 + 1) * 1440 + rng.randint(420, 510)
    else:
        observed = visit.start + (rng.randint(20, 50) if kind == "emergency" else rng.randint(60, 150))
    text, out, cents = stamp(observed), rows[models.LabResult], 0
    for key in panels:
        panel = data.LAB_PANELS[key]
        cents += panel.price * 100
        for test_key in panel.tests:
            test = data.LAB_TESTS[test_key]
            low, high = test.female if sex == "female" else test.male
            bias = condition.bias.get(test_key)
            if bias and rng.random() < bias[1]:
                value = high * rng.uniform(*test.high) if bias[0] == "H" else low * rng.uniform(*test.low)
            elif low is None:
                value = max(high * 0.3, rng.gauss(high * 0.72, high * 0.14))
            else:
                value = max(low * 0.5, rng.gauss((low + high) / 2, (high - low) / 5))
            shown = f"{value:.{test.decimals}f}"
            numeric = float(shown)  # the flag follows the value as reported, not the unrounded draw
            flag = "H" if numeric > high else "L" if low is not None and numeric < low else "N"
            reference_range = _RANGES[test_key, sex]
            row = (
                panel.code,
                panel.name,
                "loinc",
                test.code,
                test.name,
                shown,
                numeric,
                test.unit,
                reference_range,
                flag,
            )
            out.append((new_uuid(rng), text, text, _HIS, visit.patient_id, visit.id, *row, text, ""))
    return cents


def _medications(rng: random.Random, rows: dict, condition: _Condition, visit: _Visit, day: int) -> dict[str, int]:
    """Add a formula, a patent medicine and western drugs as the condition calls for; returns charges in cents."""
    scenario, out, child, stay = condition.scenario, rows[models.MedicationOrder], visit.child, visit.stay
    ordered = stamp(visit.start + (120 if visit.kind == "inpatient" else 10))
    cents = {"herbal": 0, "patent": 0, "western": 0}

    def order(
        kind: str, name: str, code: str, dose: str, route: str, frequency: str, days: int, herbs, how: str
    ) -> None:
        status = "cancelled" if rng.random() < 0.01 else "active" if day + days > LAST_DAY else "completed"
        row = (kind, status, name, code, dose, route, frequency, days, herbs, how, ordered, visit.doctor.id)
        out.append((new_uuid(rng), ordered, ordered, _HIS, visit.patient_id, visit.id, *row))

    if visit.kind == "physical_exam":
        return cents
    herbal_chance = 0.9 if stay else 0.35 if visit.department in data.PROCEDURE_DEPARTMENTS else 0.7
    if scenario.formulas and rng.random() < herbal_chance:
        formula = data.FORMULAS[rng.choice(scenario.formulas)]
        granule = rng.random() < (0.6 if child else 0.3)
        days = stay or rng.choice((3, 5) if scenario.course in _SHORT_COURSES else (7, 7, 14))
        if granule:
            how = data.GRANULE_INSTRUCTIONS
        else:
            how = data.CHILD_DECOCTION_INSTRUCTIONS if child else data.DECOCTION_INSTRUCTIONS
        herbs = formula.child_herbs if child else formula.herbs
        order("granule" if granule else "decoction", formula.name, "", "1剂", "口服", "每日1剂", days, herbs, how)
        cents["herbal"] = days * rng.randint(4000, 15000 if granule else 12000)
    patents = condition.patents[child]
    if patents and rng.random() < (0.5 if stay else 0.35):
        drug = rng.choice(patents)
        days = stay or rng.choice((7, 14, 28) if condition.chronic else (3, 7))
        order("patent", drug.name, drug.code, drug.dose, drug.route, drug.frequency, days, _NO_HERBS, "")
        cents["patent"] = rng.randint(2500, 18000)
    western = condition.western[child]
    if western and rng.random() < (0.6 if condition.chronic else 0.35):
        count = 2 if condition.chronic and len(western) > 1 and rng.random() < 0.3 else 1
        for drug in rng.sample(western, count):
            days = stay or rng.choice((28, 30) if condition.chronic else (3, 5, 7))
            order("western", drug.name, drug.code, drug.dose, drug.route, drug.frequency, days, _NO_HERBS, "")
            cents["western"] += rng.randint(1500, 26000)
    return cents


def _examination(rng: random.Random, kind: str) -> int:
    if kind == "physical_exam":
        return rng.choice(data.EXAM_PACKAGES) * 100
    if kind == "inpatient" and rng.random() < 0.8:
        return rng.randint(30_000, 150_000)
    if kind == "emergency" and rng.random() < 0.4:
        return rng.randint(15_000, 80_000)
    return 0
