"""Doctor schedules (出诊): weekly templates, holidays, sessions and their time-sliced slots, booking rules."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from hcrm.models import BaseModel, Department


def _choices_constraint(field: str, choices: type[models.TextChoices], name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


class ClinicSession(models.TextChoices):
    MORNING = "morning", _("Morning")
    AFTERNOON = "afternoon", _("Afternoon")
    EVENING = "evening", _("Evening")


class ClinicLevel(models.TextChoices):
    GENERAL = "general", _("General clinic")
    SPECIALIST = "specialist", _("Specialist clinic")
    EXPERT = "expert", _("Senior TCM expert clinic")
    SPECIAL_NEEDS = "special_needs", _("Special-needs clinic")


class BookingChannel(models.TextChoices):
    """Where a booking comes from; each has its own share of a slot's capacity."""

    ONLINE = "online", _("Online")
    PHONE = "phone", _("Phone")
    WINDOW = "window", _("On-site window")


class DoctorProfile(BaseModel):
    """What patients see of a doctor when they book: photo and introduction."""

    doctor = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="doctor_profile", verbose_name=_("doctor")
    )
    photo = models.FileField(_("photo"), upload_to="doctors/", blank=True)
    introduction = models.TextField(_("introduction"), blank=True)
    introduction_en = models.TextField(_("introduction (English)"), blank=True)
    is_bookable = models.BooleanField(_("bookable online"), default=True)

    class Meta:
        verbose_name = _("doctor profile")
        verbose_name_plural = _("doctor profiles")

    def __str__(self) -> str:
        return str(self.doctor)


class ChannelCapacity(models.Model):
    """Capacity per booking channel; shared by weekly templates, sessions and slots."""

    capacity_online = models.PositiveSmallIntegerField(_("online places"), default=0)
    capacity_phone = models.PositiveSmallIntegerField(_("phone places"), default=0)
    capacity_window = models.PositiveSmallIntegerField(_("window places"), default=0)

    class Meta:
        abstract = True

    @property
    def capacity_total(self) -> int:
        return self.capacity_online + self.capacity_phone + self.capacity_window


class ScheduleTemplate(BaseModel, ChannelCapacity):
    """A weekly pattern (every Tuesday morning, Dr Li, 针灸科) that generates sessions weeks ahead.

    Capacities here are per slot.
    """

    doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="schedule_templates", verbose_name=_("doctor")
    )
    department = models.ForeignKey(
        Department, on_delete=models.CASCADE, related_name="schedule_templates", verbose_name=_("department")
    )
    weekday = models.PositiveSmallIntegerField(
        _("weekday"), help_text=_("0 is Monday, 6 is Sunday."), choices=[(i, str(i)) for i in range(7)]
    )
    session = models.CharField(_("session"), max_length=10, choices=ClinicSession.choices)
    clinic_level = models.CharField(
        _("clinic level"), max_length=14, choices=ClinicLevel.choices, default=ClinicLevel.GENERAL
    )
    location = models.CharField(_("location"), max_length=100, blank=True)
    fee = models.DecimalField(_("fee (yuan)"), max_digits=8, decimal_places=2, default=0)
    start_time = models.TimeField(_("starts at"))
    end_time = models.TimeField(_("ends at"))
    slot_minutes = models.PositiveSmallIntegerField(_("minutes per slot"), default=15)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("weekly schedule")
        verbose_name_plural = _("weekly schedules")
        ordering = ["doctor_id", "weekday", "start_time"]
        constraints = [
            _choices_constraint("session", ClinicSession, "schedule_template_session_valid"),
            _choices_constraint("clinic_level", ClinicLevel, "schedule_template_level_valid"),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="schedule_template_weekday_valid"),
            models.CheckConstraint(condition=Q(end_time__gt=F("start_time")), name="schedule_template_times_valid"),
            models.CheckConstraint(condition=Q(slot_minutes__gte=5), name="schedule_template_slot_minutes_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.doctor} {self.weekday} {self.session}"


class Holiday(BaseModel):
    """A day without clinics, for the whole hospital or one department; templates skip it."""

    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=100)
    department = models.ForeignKey(
        Department,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="holidays",
        verbose_name=_("department"),
        help_text=_("Empty: the whole hospital."),
    )

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(
                fields=["date"], condition=Q(department__isnull=True), name="holiday_hospital_date_unique"
            ),
            models.UniqueConstraint(fields=["date", "department"], name="holiday_department_date_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class ScheduleStatus(models.TextChoices):
    OPEN = "open", _("Open")
    STOPPED = "stopped", _("Stopped (停诊)")


class Schedule(BaseModel, ChannelCapacity):
    """One clinic session of one doctor (出诊): a date, a session and its slots.

    Capacities here are the totals of its slots, kept for the grid; slots hold the counters that
    bookings take. `issued_numbers` is the last visit number given out, taken under the row lock
    of a conditional update, so numbers go out in order without gaps or repeats.
    """

    Status = ScheduleStatus

    doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="schedules", verbose_name=_("doctor")
    )
    department = models.ForeignKey(
        Department, on_delete=models.CASCADE, related_name="schedules", verbose_name=_("department")
    )
    template = models.ForeignKey(
        ScheduleTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="schedules"
    )
    date = models.DateField(_("date"))
    session = models.CharField(_("session"), max_length=10, choices=ClinicSession.choices)
    clinic_level = models.CharField(
        _("clinic level"), max_length=14, choices=ClinicLevel.choices, default=ClinicLevel.GENERAL
    )
    location = models.CharField(_("location"), max_length=100, blank=True)
    fee = models.DecimalField(_("fee (yuan)"), max_digits=8, decimal_places=2, default=0)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    releases_at = models.DateTimeField(_("released at"), help_text=_("Online booking opens at this moment (放号)."))
    status = models.CharField(_("status"), max_length=10, choices=ScheduleStatus.choices, default=ScheduleStatus.OPEN)
    stopped_at = models.DateTimeField(_("stopped at"), null=True, blank=True)
    stopped_reason = models.CharField(_("reason for stopping"), max_length=200, blank=True)
    extra_capacity = models.PositiveSmallIntegerField(_("extra places (加号)"), default=0)
    issued_numbers = models.PositiveIntegerField(_("visit numbers issued"), default=0)
    no_shows_marked_at = models.DateTimeField(_("no-shows marked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("clinic session")
        verbose_name_plural = _("clinic sessions")
        ordering = ["date", "starts_at", "doctor_id"]
        indexes = [
            models.Index(fields=["department", "date"], name="schedule_department_date"),
            models.Index(fields=["date", "status"], name="schedule_date_status"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["doctor", "date", "session"], name="schedule_doctor_date_session_unique"),
            _choices_constraint("session", ClinicSession, "schedule_session_valid"),
            _choices_constraint("clinic_level", ClinicLevel, "schedule_level_valid"),
            _choices_constraint("status", ScheduleStatus, "schedule_status_valid"),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="schedule_times_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.doctor} {self.date} {self.session}"


class Slot(BaseModel, ChannelCapacity):
    """A time slice of a session (分时段) with its own places per channel.

    `taken_*` count the places held or booked from each channel's share; the check constraints make
    overbooking impossible whatever the code does, and bookings take a place with a conditional
    `UPDATE … SET taken = taken + 1 WHERE taken < capacity`.
    """

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="slots")
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    taken_online = models.PositiveSmallIntegerField(_("online places taken"), default=0)
    taken_phone = models.PositiveSmallIntegerField(_("phone places taken"), default=0)
    taken_window = models.PositiveSmallIntegerField(_("window places taken"), default=0)

    class Meta:
        verbose_name = _("slot")
        verbose_name_plural = _("slots")
        ordering = ["starts_at"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "starts_at"], name="slot_schedule_start_unique"),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="slot_times_valid"),
            models.CheckConstraint(condition=Q(taken_online__lte=F("capacity_online")), name="slot_online_capacity"),
            models.CheckConstraint(condition=Q(taken_phone__lte=F("capacity_phone")), name="slot_phone_capacity"),
            models.CheckConstraint(condition=Q(taken_window__lte=F("capacity_window")), name="slot_window_capacity"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} {self.starts_at:%Y-%m-%d %H:%M}"

    @property
    def taken_total(self) -> int:
        return self.taken_online + self.taken_phone + self.taken_window

    def free(self, channel: str) -> int:
        return getattr(self, f"capacity_{channel}") - getattr(self, f"taken_{channel}")


class BookingPolicy(models.Model):
    """The hospital's booking rules; one row (see `booking_policy()`), checked by the booking service."""

    release_days_ahead = models.PositiveSmallIntegerField(
        _("days released ahead"), default=7, help_text=_("A day's slots open this many days before it.")
    )
    release_time = models.TimeField(_("release time"), default=dt.time(8, 0))
    window_fallback_hours = models.PositiveSmallIntegerField(
        _("hours before a session that unused online places go to the window"),
        default=2,
        help_text=_("0 keeps online places for online bookings only."),
    )
    hold_minutes = models.PositiveSmallIntegerField(_("minutes a chosen slot is held"), default=5)
    cancel_days_before = models.PositiveSmallIntegerField(
        _("cancellation deadline: days before"), default=1, help_text=_("0 means the same day.")
    )
    cancel_time = models.TimeField(_("cancellation deadline: time"), default=dt.time(18, 0))
    max_open_bookings = models.PositiveSmallIntegerField(_("open bookings per patient"), default=5)
    no_show_limit = models.PositiveSmallIntegerField(_("no-shows that block online booking"), default=3)
    no_show_window_days = models.PositiveSmallIntegerField(_("counted over (days)"), default=90)
    no_show_block_days = models.PositiveSmallIntegerField(_("online booking blocked for (days)"), default=90)
    reminder_time = models.TimeField(_("reminder the day before at"), default=dt.time(18, 0))
    waitlist_offer_minutes = models.PositiveSmallIntegerField(_("minutes to accept a waitlist offer"), default=30)
    login_code_minutes = models.PositiveSmallIntegerField(_("minutes a sign-in code is valid"), default=5)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("booking rules")
        verbose_name_plural = _("booking rules")

    def __str__(self) -> str:
        return str(_("Booking rules"))
