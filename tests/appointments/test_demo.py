"""The appointments part of `manage.py seed_demo`: doctors' profiles, weekly schedules, holidays, two weeks of sessions."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum
from django.utils import timezone

from appointments.demo import PUBLIC_HOLIDAYS
from appointments.models import DoctorProfile, Holiday, Schedule, ScheduleTemplate, Slot
from hcrm.models import User

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", patients=3, seed=7, no_progress=True, stdout=out)
    return out.getvalue()


def test_the_demo_hospital_has_weekly_schedules_profiles_holidays_and_two_weeks_of_sessions():
    output = seed()

    doctors = User.objects.filter(groups__name="doctor")
    assert set(ScheduleTemplate.objects.values_list("doctor", flat=True)) == set(doctors.values_list("pk", flat=True))
    assert DoctorProfile.objects.count() == doctors.count()
    assert DoctorProfile.objects.get(doctor__username="doctor").introduction.startswith("李明华，内科")
    experts = ScheduleTemplate.objects.filter(clinic_level="expert")
    assert set(experts.values_list("doctor__is_renowned_expert", flat=True)) == {True}
    assert set(experts.values_list("capacity_online", "capacity_phone", "capacity_window", "slot_minutes")) == {
        (1, 0, 0, 15)
    }
    assert set(ScheduleTemplate.objects.values_list("slot_minutes", flat=True)) == {15}
    assert set(ScheduleTemplate.objects.values_list("session", flat=True)) == {"morning", "afternoon"}
    today = timezone.localdate()
    holidays = {day for day, _name in PUBLIC_HOLIDAYS if today <= day <= today + dt.timedelta(days=365)}
    assert set(Holiday.objects.values_list("date", flat=True)) == holidays
    dates = Schedule.objects.values_list("date", flat=True)
    assert min(dates) >= today and max(dates) < today + dt.timedelta(days=14)
    assert not Schedule.objects.filter(date__in=holidays).exists()
    per_week = (
        Schedule.objects.filter(date__lt=today + dt.timedelta(days=7)).values("department").annotate(n=Count("pk"))
    )
    assert len(per_week) == 12
    expert_session = Schedule.objects.filter(clinic_level="expert").annotate(places=Sum("slots__capacity_online"))
    assert {session.places for session in expert_session} <= {10}
    assert f"weekly schedules and {Schedule.objects.count()} clinic sessions created" in output


def test_seeding_again_changes_no_schedule():
    seed()
    before = [
        list(model.objects.order_by("pk").values())
        for model in (ScheduleTemplate, DoctorProfile, Holiday, Schedule, Slot)
    ]

    output = seed()

    after = [
        list(model.objects.order_by("pk").values())
        for model in (ScheduleTemplate, DoctorProfile, Holiday, Schedule, Slot)
    ]
    assert after == before
    assert "0 weekly schedules and 0 clinic sessions created" in output
