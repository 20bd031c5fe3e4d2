"""The appointments part of the demo hospital: doctors' introductions, weekly schedules, holidays and two
weeks of sessions. It depends on the demo's staff only, never on how many patients were loaded."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal

from auditlog.context import disable_auditlog
from django.db import transaction
from django.utils import timezone, translation

from appointments.models import ClinicLevel, ClinicSession, DoctorProfile, Holiday, ScheduleTemplate
from appointments.services import schedules_generate
from hcrm.models import Department, StaffDepartment, User
from patients.demo import data
from patients.demo.load import demo_extension
from patients.models import Patient

_NAMESPACE = uuid.UUID("6d3c1f7e-5a0b-4f43-9a55-3b8d2f61c0a4")
WEEKS_GENERATED = 2
MORNING = (dt.time(8, 0), dt.time(11, 30))
AFTERNOON = (dt.time(14, 0), dt.time(17, 0))
EXPERT_MORNING = (dt.time(8, 30), dt.time(11, 0))

# Statutory holidays (国家法定节假日): the festival days on which the demo hospital runs no outpatient clinics.
PUBLIC_HOLIDAYS: tuple[tuple[dt.date, str], ...] = (
    (dt.date(2026, 1, 1), "元旦"),
    (dt.date(2026, 2, 16), "除夕"),
    (dt.date(2026, 2, 17), "春节"),
    (dt.date(2026, 2, 18), "春节"),
    (dt.date(2026, 4, 5), "清明节"),
    (dt.date(2026, 5, 1), "劳动节"),
    (dt.date(2026, 6, 19), "端午节"),
    (dt.date(2026, 9, 25), "中秋节"),
    (dt.date(2026, 10, 1), "国庆节"),
    (dt.date(2026, 10, 2), "国庆节"),
    (dt.date(2026, 10, 3), "国庆节"),
    (dt.date(2027, 1, 1), "元旦"),
    (dt.date(2027, 2, 5), "除夕"),
    (dt.date(2027, 2, 6), "春节"),
    (dt.date(2027, 2, 7), "春节"),
    (dt.date(2027, 2, 8), "春节"),
    (dt.date(2027, 4, 5), "清明节"),
    (dt.date(2027, 5, 1), "劳动节"),
    (dt.date(2027, 6, 9), "端午节"),
    (dt.date(2027, 9, 15), "中秋节"),
    (dt.date(2027, 10, 1), "国庆节"),
    (dt.date(2027, 10, 2), "国庆节"),
    (dt.date(2027, 10, 3), "国庆节"),
)

LOCATIONS = {
    ClinicLevel.EXPERT: "名医堂 {room} 诊室",
    ClinicLevel.SPECIALIST: "门诊楼 {floor} 楼 {code} 专科诊室 {room}",
    ClinicLevel.GENERAL: "门诊楼 {floor} 楼 {code} 诊室 {room}",
}


def _stable_uuid(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{kind}:{key}")


def _clinic_level(doctor: User) -> str:
    if doctor.is_renowned_expert:
        return ClinicLevel.EXPERT
    if doctor.title in ("chief_physician", "associate_chief_physician"):
        return ClinicLevel.SPECIALIST
    return ClinicLevel.GENERAL


def _fee(doctor: User) -> Decimal:
    return Decimal(data.REGISTRATION_FEES.get("renowned" if doctor.is_renowned_expert else doctor.title, 20))


def _sessions(rng: random.Random, level: str, position: int) -> list[tuple[int, str]]:
    """(weekday, session) pairs: experts twice a week, specialists three times, others four or five."""
    count = {ClinicLevel.EXPERT: 2, ClinicLevel.SPECIALIST: 3}.get(level, rng.choice((4, 5)))
    pairs = [(weekday, session) for weekday in range(6) for session in (ClinicSession.MORNING, ClinicSession.AFTERNOON)]
    if level == ClinicLevel.EXPERT:
        pairs = [(weekday, ClinicSession.MORNING) for weekday in range(6)]
    # Colleagues of one department start on different days, so every weekday has someone.
    rng.shuffle(pairs)
    pairs.sort(key=lambda pair: (pair[0] - position) % 6)
    chosen: list[tuple[int, str]] = []
    for weekday, session in pairs:
        if all(day != weekday for day, _session in chosen):
            chosen.append((weekday, session))
        if len(chosen) == count:
            break
    return sorted(chosen)


def _template(doctor: User, department: Department, weekday: int, session: str, level: str, room: int):
    if level == ClinicLevel.EXPERT:
        (start, end), places = EXPERT_MORNING, (1, 0, 0)  # 名老中医: ten places, online only
    elif session == ClinicSession.MORNING:
        (start, end), places = MORNING, (2, 1, 1) if level == ClinicLevel.SPECIALIST else (1, 1, 1)
    else:
        (start, end), places = AFTERNOON, (2, 1, 1) if level == ClinicLevel.SPECIALIST else (1, 1, 1)
    location = LOCATIONS[level].format(floor=2 + room % 4, code=department.code, room=100 + room)
    return ScheduleTemplate(
        uuid=_stable_uuid("template", f"{doctor.username}:{weekday}:{session}"),
        doctor=doctor,
        department=department,
        weekday=weekday,
        session=session,
        clinic_level=level,
        location=location,
        fee=_fee(doctor),
        start_time=start,
        end_time=end,
        slot_minutes=15,
        capacity_online=places[0],
        capacity_phone=places[1],
        capacity_window=places[2],
        valid_from=data.GO_LIVE.date(),
    )


def _introduction(doctor: User, department: Department) -> tuple[str, str]:
    with translation.override("zh-hans"):
        title_zh = str(User.Title(doctor.title).label) if doctor.title else "医师"
    with translation.override("en"):
        title_en = str(User.Title(doctor.title).label) if doctor.title else "Doctor"
    honour_zh = "名老中医，" if doctor.is_renowned_expert else ""
    honour_en = "A renowned senior TCM expert. " if doctor.is_renowned_expert else ""
    zh = f"{doctor.full_name}，{honour_zh}{department.name}{title_zh}。{doctor.specialties}。"
    en = f"{honour_en}{title_en}, {department.name_en or department.name}."
    return zh, en


@demo_extension
def appointments_demo_ensure(*, seed: int) -> str:
    """Profiles and weekly schedules of the demo doctors, holidays ahead, and sessions for the next two weeks."""
    today = timezone.localdate()
    rng = random.Random(f"{seed}:appointments")  # noqa: S311 (demo data, not secrets)
    memberships = (
        StaffDepartment.objects.filter(user__groups__name="doctor", user__is_active=True)
        .select_related("user", "department")
        .order_by("department__code", "user__username", "pk")
    )
    primary: dict[int, tuple[User, Department]] = {}
    for membership in memberships:
        primary.setdefault(membership.user_id, (membership.user, membership.department))
    with transaction.atomic(), disable_auditlog():
        profiles = [
            DoctorProfile(
                uuid=_stable_uuid("profile", doctor.username),
                doctor=doctor,
                introduction=_introduction(doctor, department)[0],
                introduction_en=_introduction(doctor, department)[1],
            )
            for doctor, department in primary.values()
        ]
        DoctorProfile.objects.bulk_create(profiles, ignore_conflicts=True)
        scheduled = set(ScheduleTemplate.objects.values_list("doctor_id", flat=True).distinct())
        templates = []
        positions: dict[int, int] = {}
        for doctor, department in primary.values():
            position = positions[department.pk] = positions.get(department.pk, -1) + 1
            if doctor.pk in scheduled:
                continue  # a doctor whose schedule staff changed keeps it
            level = _clinic_level(doctor)
            for weekday, session in _sessions(rng, level, position):
                templates.append(_template(doctor, department, weekday, session, level, room=len(templates) % 40))
        ScheduleTemplate.objects.bulk_create(templates, ignore_conflicts=True)
        horizon = today + dt.timedelta(days=365)
        Holiday.objects.bulk_create(
            [
                Holiday(uuid=_stable_uuid("holiday", day.isoformat()), date=day, name=name)
                for day, name in PUBLIC_HOLIDAYS
                if today <= day <= horizon
            ],
            ignore_conflicts=True,
        )
        created = schedules_generate(start=today, weeks=WEEKS_GENERATED)
    summary = (
        f"{len(templates)} weekly schedules and {created} clinic sessions created "
        f"({ScheduleTemplate.objects.count()} weekly schedules in all)"
    )
    someone = Patient.objects.filter(is_deceased=False).exclude(mobile="").order_by("pk").first()
    if someone is not None:
        summary += (
            f"\n  Patient portal: http://127.0.0.1:8000/portal/ — sign in as {someone.name} with {someone.mobile}; "
            "the SMS code appears in the background worker's output"
        )
    return summary
