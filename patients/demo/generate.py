"""Rows of the demo hospital, computed from a seed and a patient number; nothing here touches the database.

Each patient draws from its own `random.Random` seeded with (seed, patient number), so patient 5,000
is the same whether it is written in the first run or in a later run that resumes after 4,999. Rows
are plain tuples in the field order of `FIELDS`; the loader turns them into database rows.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from bisect import bisect
from functools import lru_cache
from typing import NamedTuple

from patients import models
from patients.demo import clinical, data
from patients.demo.base import (
    ANCHOR_ORDINAL,
    CONTACT_PHONES,
    STAFF_PHONES,
    Weighted,
    World,
    day_of,
    mobile,
    moment,
    new_uuid,
    stamp,
)
from patients.pinyin import name_search_keys
from patients.validators import national_id_check_digit

# Field order of the generated rows, parents before children. Patients and encounters carry their
# primary key so that children can point at them; the other tables leave `id` to the database.
FIELDS: dict[type, tuple[str, ...]] = {
    models.Patient: (
        "id", "uuid", "created_at", "updated_at", "mrn", "name", "name_pinyin", "name_pinyin_initials",
        "name_pinyin_consonants", "sex", "birth_date", "national_id", "mobile", "phone", "email", "province", "city",
        "district", "region_code", "address_detail", "postal_code", "employer", "occupation", "income_band",
        "marital_status", "ethnicity", "family_notes", "source", "preferred_language", "is_deceased", "deceased_date",
    ),
    models.PatientIdentifier: ("uuid", "created_at", "updated_at", "patient_id", "kind", "assigner", "value"),
    models.ContactPerson: (
        "uuid", "created_at", "updated_at", "patient_id", "name", "relationship", "phone", "is_emergency_contact",
    ),
    models.Consent: ("uuid", "created_at", "updated_at", "patient_id", "purpose", "channel", "granted", "note"),
    models.Patient.tags.through: ("patient_id", "tag_id"),
    models.PatientDepartment: ("patient_id", "department_id", "created_at"),
    models.ClinicalHistory: (
        "uuid", "created_at", "updated_at", "source_system", "patient_id", "kind", "content", "recorded_at",
    ),
    models.Allergy: (
        "uuid", "created_at", "updated_at", "source_system", "patient_id", "substance", "code", "reaction",
        "severity", "is_active", "recorded_at",
    ),
    **clinical.FIELDS,
}  # fmt: skip
# The only field a generated row may leave as None; every other value is always there.
NULLABLE = {models.Patient: ("deceased_date",)}
_PATIENT_NAMESPACE = uuid.UUID("5f0c3c52-8a1e-4d4e-9a53-0c1f4e2b7d10")


class Batch(NamedTuple):
    rows: dict[type, list[tuple]]
    patients: int
    encounters: int


class StaffMember(NamedTuple):
    username: str
    full_name: str
    roles: tuple[str, ...]
    departments: tuple[str, ...]  # department codes
    head_of: tuple[str, ...]
    title: str
    specialties: str
    is_renowned_expert: bool
    employee_number: str
    phone: str
    is_superuser: bool = False
    is_demo_login: bool = False  # signs in with the shared demo password


def patient_uuid(index: int) -> uuid.UUID:
    """The public id of demo patient `index`, the same for every seed: it is how a rerun recognises its patients."""
    return uuid.uuid5(_PATIENT_NAMESPACE, f"patient:{index}")


def mrn(prefix: str, index: int) -> str:
    return f"{prefix}{index:08d}"


@lru_cache(maxsize=200_000)
def search_keys(name: str) -> tuple[str, str, str]:
    # Names repeat a great deal; pinyin conversion is the slowest step of generation without this cache.
    return name_search_keys(name)


# --- Names and people -------------------------------------------------------------------------

_SURNAMES = {style: Weighted(pool) for style, pool in data.SURNAME_POOLS.items()}
_AGES = Weighted([((low, high), weight) for low, high, weight in data.AGE_BANDS])
_REGIONS = Weighted([(region, region.weight) for region in data.REGIONS])
_ETHNICITIES = {
    region.code: Weighted(
        [((name, style), weight) for name, weight, style in region.ethnicities or data.DEFAULT_ETHNICITIES]
    )
    for region in data.REGIONS
}
_OCCUPATIONS = Weighted(data.OCCUPATIONS)
_SOURCES = Weighted(data.SOURCES)
_EMAIL_DOMAINS = Weighted(data.EMAIL_DOMAINS)


def chinese_name(rng: random.Random, *, sex: str, birth_year: int, style: str = "han", surname: str = "") -> str:
    """A name in the naming style of an ethnicity; `surname` is kept for families that share one."""
    if (style, sex) in data.FULL_NAMES:
        return rng.choice(data.FULL_NAMES[style, sex])
    cohort = bisect(data.COHORT_START_YEARS, birth_year)
    return (surname or _SURNAMES[style].pick(rng)) + rng.choice(data.GIVEN_NAMES[sex, cohort])


def staff_name(rng: random.Random, taken: set[str], born: tuple[int, int] = (1965, 1998)) -> tuple[str, str]:
    """(name, sex) of a member of staff born in the years `born`, unique among `taken`."""
    while True:
        sex = "female" if rng.random() < 0.55 else "male"
        name = chinese_name(rng, sex=sex, birth_year=rng.randint(*born))
        if name not in taken:
            taken.add(name)
            return name, sex


def _national_id(rng: random.Random, region: str, birth: dt.date, sex: str, taken: set[int]) -> tuple[str, dt.date]:
    # GB 11643: region, birth date, a three-digit sequence whose parity gives the sex, a check digit.
    # The first 17 digits must be unique; a clash moves to the next sequence number of the same sex.
    sequence = rng.randrange(500) * 2 + (1 if sex == "male" else 0)
    while True:
        base = int(region) * 10**11 + (birth.year * 10_000 + birth.month * 100 + birth.day) * 1000
        for step in range(500):
            key = base + (sequence + 2 * step) % 1000
            if key not in taken:
                taken.add(key)
                first17 = f"{key:017d}"
                return first17 + national_id_check_digit(first17), birth
        birth -= dt.timedelta(days=1)


def _occupation(rng: random.Random, age: int, sex: str) -> data.Occupation:
    if age < 7:
        return data.CHILD
    if age < 18 or (age < 23 and rng.random() < 0.6):
        return data.STUDENT
    if age >= (60 if sex == "male" else 55) and rng.random() < 0.9:
        return data.RETIRED
    return _OCCUPATIONS.pick(rng)


def _marital_status(rng: random.Random, age: int) -> str:
    if rng.random() < 0.08:
        return ""
    if age < 20:
        return "10"
    if age < 30:
        return "10" if rng.random() < 0.55 else ("20" if rng.random() < 0.96 else "40")
    roll = rng.random()
    if age < 60:
        return "20" if roll < 0.85 else "10" if roll < 0.91 else "40" if roll < 0.98 else "30"
    return "20" if roll < 0.7 else "30" if roll < 0.92 else "40" if roll < 0.97 else "10"


def _email(rng: random.Random, pinyin: str) -> str:
    domain = _EMAIL_DOMAINS.pick(rng)
    if domain == "qq.com" and rng.random() < 0.7:
        return f"{rng.randint(10_000_000, 3_999_999_999)}@qq.com"
    return f"{pinyin}{rng.randint(1, 9999)}@{domain}"


def _address(rng: random.Random, region: data.Region) -> str:
    street = rng.choice(region.streets or data.STREETS)
    building = f"{rng.choice(data.COMMUNITIES)}{rng.randint(1, 30)}栋{rng.randint(1, 32)}{rng.randint(1, 8):02d}房"
    return f"{street}{rng.randint(1, 899)}号{building}"


# --- Staff ------------------------------------------------------------------------------------


def staff_plan(seed: int) -> tuple[StaffMember, ...]:
    """The demo logins, then doctors and nurses department by department, then the call-centre agents."""
    rng = random.Random(f"{seed}:staff")
    taken = {login.full_name for login in data.DEMO_LOGINS}
    staff = [
        StaffMember(
            username=login.username,
            full_name=login.full_name,
            roles=(login.role,),
            departments=(login.department,) if login.department else (),
            head_of=(login.department,) if login.is_head else (),
            title=login.title,
            specialties="",
            is_renowned_expert=False,
            employee_number=f"{number:05d}",
            phone=mobile(rng, STAFF_PHONES + number),
            is_superuser=login.is_superuser,
            is_demo_login=True,
        )
        for number, login in enumerate(data.DEMO_LOGINS, start=1)
    ]
    for department in data.DEPARTMENTS:
        code = department.code
        for position in range(department.doctors):
            renowned = position == 0 and code in data.RENOWNED_DEPARTMENTS
            second = (data.SECOND_DEPARTMENT[code],) if position == 1 and code in data.SECOND_DEPARTMENT else ()
            # The chief physician heads the department, except in internal medicine where `head` does.
            head_of = (code,) if position == 0 and code != "NK" else ()
            focus = "、".join(rng.sample(department.specialties, 3))
            honour = "全国名老中医药专家学术经验继承工作指导老师，" if renowned else ""
            doctor = _staff(
                rng, taken, len(staff) + 1, f"{code.lower()}.d{position + 1:02d}",
                roles=("doctor", "department_head") if head_of else ("doctor",),
                departments=(code, *second),
                head_of=head_of,
                title=data.DOCTOR_TITLES[position],
                specialties=f"{honour}擅长{focus}的中医及中西医结合诊治",
                renowned=renowned,
            )  # fmt: skip
            staff.append(doctor)
        for position in range(data.NURSES_PER_DEPARTMENT):
            title = "senior_nurse" if position == 0 else "nurse"
            username = f"{code.lower()}.n{position + 1:02d}"
            staff.append(
                _staff(rng, taken, len(staff) + 1, username, roles=("nurse",), departments=(code,), title=title)
            )
    for position in range(data.AGENTS):
        staff.append(_staff(rng, taken, len(staff) + 1, f"kf{position + 1:02d}", roles=("agent",)))
    return tuple(staff)


def _staff(
    rng, taken, number, username, *, roles, departments=(), head_of=(), title="", specialties="", renowned=False
) -> StaffMember:
    # Renowned elders and chief physicians are a generation older than their colleagues.
    born = (1940, 1958) if renowned else (1958, 1972) if title == "chief_physician" else (1965, 1998)
    name, _sex = staff_name(rng, taken, born)
    phone = mobile(rng, STAFF_PHONES + number)
    return StaffMember(
        username, name, roles, departments, head_of, title, specialties, renowned, f"{number:05d}", phone
    )  # fmt: skip


# --- Patients -----------------------------------------------------------------------------------


def generate_batch(
    world: World, *, first_index: int, count: int, first_patient_id: int, first_encounter_id: int, taken_ids: set[int]
) -> Batch:
    """Rows for patients `first_index` .. `first_index + count - 1`, with consecutive primary keys.

    `taken_ids` holds the first 17 digits (as integers) of every national ID already in use; the IDs
    handed out here are added to it.
    """
    rows: dict[type, list[tuple]] = {model: [] for model in FIELDS}
    encounter_id = first_encounter_id
    for offset in range(count):
        encounter_id = _patient(world, rows, first_index + offset, first_patient_id + offset, encounter_id, taken_ids)
    return Batch(rows, count, encounter_id - first_encounter_id)


def _patient(world: World, rows: dict, index: int, patient_id: int, encounter_id: int, taken_ids: set[int]) -> int:
    rng = random.Random(f"{world.seed}:{index}")
    region = _REGIONS.pick(rng)
    ethnicity, style = _ETHNICITIES[region.code].pick(rng)
    sex = "female" if rng.random() < 0.55 else "male"
    low, high = _AGES.pick(rng)
    age = rng.randint(low, high)
    birth = dt.date.fromordinal(ANCHOR_ORDINAL - rng.randint(max(2, int(age * 365.25)), int((age + 1) * 365.25) - 1))
    national_id, birth = _national_id(rng, region.code, birth, sex, taken_ids)
    surname = "" if (style, sex) in data.FULL_NAMES else _SURNAMES[style].pick(rng)
    name = chinese_name(rng, sex=sex, birth_year=birth.year, style=style, surname=surname)
    pinyin, initials, consonants = search_keys(name)
    phone = mobile(rng, index)
    encounter_id, first_visit, last_visit, problems = clinical.encounters(
        rng, world, rows, patient_id=patient_id, index=index, birth=birth, age=age, sex=sex, next_id=encounter_id
    )
    deceased = None
    if rng.random() < (0.12 if age >= 85 else 0.05 if age >= 75 else 0.015 if age >= 65 else 0.001):
        last_day = day_of(last_visit)
        if last_day < ANCHOR_ORDINAL - 2:
            deceased = dt.date.fromordinal(rng.randint(last_day + 1, ANCHOR_ORDINAL - 1))
    registered = stamp(first_visit - rng.randint(5, 40))
    updated = stamp(moment(deceased.toordinal(), 600) if deceased else last_visit)
    occupation = _occupation(rng, age, sex)
    employer = rng.choice(data.EMPLOYERS[occupation.employers]) if occupation.employers else ""
    income = "" if occupation in (data.CHILD, data.STUDENT) or rng.random() < 0.1 else _income(rng, occupation)
    landline = f"+8620{rng.choice('38')}{rng.randrange(10**7):07d}" if region.area_code and rng.random() < 0.12 else ""
    email = _email(rng, pinyin) if 18 <= age <= 60 and rng.random() < 0.2 else ""
    family_notes = rng.choice(data.FAMILY_NOTES) if age >= 18 and rng.random() < 0.05 else ""
    rows[models.Patient].append(
        (
            patient_id, patient_uuid(index).hex, registered, updated, mrn(world.mrn_prefix, index), name, pinyin,
            initials, consonants, sex, birth, national_id, phone, landline, email, region.province,
            region.city, region.district, region.code, _address(rng, region), region.postal_code, employer,
            occupation.name, income, _marital_status(rng, age), ethnicity, family_notes, _SOURCES.pick(rng),
            "en" if rng.random() < 0.005 else "zh-hans", deceased is not None, deceased,
        )
    )  # fmt: skip
    _identifiers(rng, rows, patient_id, index, region, registered)
    _contacts(rng, rows, patient_id, index, registered, surname=surname, style=style, sex=sex, age=age, birth=birth)
    _consents(rng, rows, patient_id, registered)
    _tags(rng, world, rows, patient_id, age, problems)
    _history(rng, rows, patient_id, sex, age, problems, stamp(first_visit))
    _allergies(rng, rows, patient_id, age, stamp(first_visit))
    return encounter_id


_INCOMES = {
    occupation: Weighted(zip(data.INCOME_BANDS, occupation.incomes, strict=True)) for occupation, _w in data.OCCUPATIONS
}
_INCOMES[data.RETIRED] = Weighted(zip(data.INCOME_BANDS, data.RETIRED.incomes, strict=True))


def _income(rng: random.Random, occupation: data.Occupation) -> str:
    return _INCOMES[occupation].pick(rng)


def _identifiers(rng, rows, patient_id, index, region, registered) -> None:
    values = [("his", data.HIS_ASSIGNER, f"{index:010d}")]
    if rng.random() < 0.85:
        values.append(("visit_card", data.CARD_ASSIGNER, f"{8_600_000_000 + index}"))
    if rng.random() < 0.6:
        values.append(("insurance", f"{region.city}医疗保障局", f"{region.code}{index:010d}"))
    rows[models.PatientIdentifier].extend(
        (new_uuid(rng), registered, registered, patient_id, *value) for value in values
    )


def _contacts(rng, rows, patient_id, index, registered, *, surname, style, sex, age, birth) -> None:
    """A spouse, a parent or a grown-up child to call; children share the father's surname."""
    if rng.random() >= 0.5:
        return
    out = rows[models.ContactPerson]
    for number in range(1 if rng.random() < 0.75 else 2):
        if age < 18:
            relationship, contact_sex = "parent", "female" if number == 0 and rng.random() < 0.6 else "male"
            born, family = birth.year - rng.randint(22, 38), surname if contact_sex == "male" else ""
        elif age >= 65 or (age >= 50 and rng.random() < 0.4):
            relationship, contact_sex = "child", rng.choice(("male", "female"))
            born, family = birth.year + rng.randint(22, 35), surname if sex == "male" else ""
        else:
            relationship = "spouse" if number == 0 else rng.choice(("parent", "sibling", "friend"))
            contact_sex, born, family = "female" if sex == "male" else "male", birth.year + rng.randint(-4, 4), ""
        name = chinese_name(rng, sex=contact_sex, birth_year=born, style=style, surname=family)
        phone = mobile(rng, CONTACT_PHONES + index * 2 + number)
        out.append((new_uuid(rng), registered, registered, patient_id, name, relationship, phone, number == 0))


def _consents(rng, rows, patient_id, registered) -> None:
    out = rows[models.Consent]
    for purpose, channel, granted, chance in (
        ("follow_up", "sms", True, 0.25),
        ("marketing", "sms", True, 0.10),
        ("care", "sms", True, 0.12),
        ("follow_up", "phone", False, 0.02),
    ):
        if rng.random() < chance:
            note = "" if granted else "患者要求不再电话随访"
            out.append((new_uuid(rng), registered, registered, patient_id, purpose, channel, granted, note))


def _tags(rng, world, rows, patient_id, age, problems) -> None:
    names = []
    if rng.random() < 0.01:
        names.append("VIP")
    if any(problem.chronic for problem in problems) and rng.random() < 0.5:
        names.append("慢病管理")
    names.extend(dict.fromkeys(problem.tag for problem in problems if problem.tag))
    if age >= 65:
        names.append("老年人")
    rows[models.Patient.tags.through].extend((patient_id, world.tags[name]) for name in names)


def _history(rng, rows, patient_id, sex, age, problems, first_visit) -> None:
    if rng.random() >= 0.3:
        return
    out = rows[models.ClinicalHistory]
    past = [problem.history.format(years=rng.randint(1, 15)) for problem in problems if problem.history]
    entries = [("past", "；".join(past) if past else rng.choice(data.HISTORY_PAST))]
    if rng.random() < 0.6:
        entries.append(("family", rng.choice(data.HISTORY_FAMILY)))
    if age >= 18 and rng.random() < 0.5:
        entries.append(("personal", rng.choice(data.HISTORY_PERSONAL)))
    if age >= 18 and rng.random() < 0.15:
        caesarean = sex == "female" and 25 <= age <= 50 and rng.random() < 0.4
        entries.append(("surgical", data.HISTORY_CAESAREAN if caesarean else rng.choice(data.HISTORY_SURGICAL)))
    if sex == "female" and age >= 18 and rng.random() < 0.4:
        entries.append(("obstetric", rng.choice(data.HISTORY_OBSTETRIC)))
    for kind, content in entries:
        out.append(
            (new_uuid(rng), first_visit, first_visit, data.SOURCE_SYSTEM, patient_id, kind, content, first_visit)
        )


_ALLERGENS = {child: Weighted([(a, a[4]) for a in data.ALLERGENS if child or not a[5]]) for child in (True, False)}


def _allergies(rng, rows, patient_id, age, first_visit) -> None:
    if rng.random() >= 0.08:
        return
    out, seen = rows[models.Allergy], set()
    for _ in range(1 if rng.random() < 0.8 else 2):
        substance, code, reaction, severities, _weight, _children = _ALLERGENS[age < 14].pick(rng)
        if substance not in seen:
            seen.add(substance)
            row = (substance, code, reaction, rng.choice(severities), True, first_visit)
            out.append((new_uuid(rng), first_visit, first_visit, data.SOURCE_SYSTEM, patient_id, *row))
