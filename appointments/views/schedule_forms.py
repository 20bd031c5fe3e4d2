"""Forms of the schedule pages: they check shape; the schedule services check the rules."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from appointments.models import BookingChannel, ClinicLevel, ClinicSession
from appointments.views.schedule_access import managed_departments, manages_all_departments
from hcrm.models import Department, User
from hcrm.roles import Role

WEEKDAYS = [
    (0, gettext_lazy("Monday")),
    (1, gettext_lazy("Tuesday")),
    (2, gettext_lazy("Wednesday")),
    (3, gettext_lazy("Thursday")),
    (4, gettext_lazy("Friday")),
    (5, gettext_lazy("Saturday")),
    (6, gettext_lazy("Sunday")),
]


def _number(**attrs) -> forms.NumberInput:
    return forms.NumberInput(attrs={"inputmode": "numeric", **attrs})


def _time_input() -> forms.TimeInput:
    return forms.TimeInput({"type": "time"}, format="%H:%M")


def _date_input() -> forms.DateInput:
    return forms.DateInput({"type": "date"}, format="%Y-%m-%d")


class DoctorChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.full_name or obj.username


class ScheduleTemplateForm(forms.Form):
    department = forms.ModelChoiceField(label=gettext_lazy("Department"), queryset=Department.objects.none())
    doctor = DoctorChoice(label=gettext_lazy("Doctor"), queryset=User.objects.none())
    weekday = forms.TypedChoiceField(label=gettext_lazy("Weekday"), choices=WEEKDAYS, coerce=int)
    session = forms.ChoiceField(label=gettext_lazy("Session"), choices=ClinicSession.choices)
    start_time = forms.TimeField(label=gettext_lazy("Starts at"), widget=_time_input())
    end_time = forms.TimeField(label=gettext_lazy("Ends at"), widget=_time_input())
    slot_minutes = forms.CharField(label=gettext_lazy("Minutes per slot"), initial=15, widget=_number(min=5))
    capacity_online = forms.CharField(label=gettext_lazy("Online places per slot"), initial=0, widget=_number(min=0))
    capacity_phone = forms.CharField(label=gettext_lazy("Phone places per slot"), initial=0, widget=_number(min=0))
    capacity_window = forms.CharField(label=gettext_lazy("Window places per slot"), initial=0, widget=_number(min=0))
    clinic_level = forms.ChoiceField(
        label=gettext_lazy("Clinic level"), choices=ClinicLevel.choices, initial=ClinicLevel.GENERAL
    )
    location = forms.CharField(label=gettext_lazy("Location"), required=False, max_length=100)
    fee = forms.CharField(label=gettext_lazy("Fee (yuan)"), initial="0", widget=_number(min=0, step="0.01"))
    valid_from = forms.DateField(label=gettext_lazy("Valid from"), widget=_date_input())
    valid_until = forms.DateField(
        label=gettext_lazy("Valid until"),
        required=False,
        widget=_date_input(),
        help_text=gettext_lazy("Leave empty to repeat until changed."),
    )
    is_active = forms.BooleanField(label=pgettext_lazy("weekly schedule", "Active"), required=False, initial=True)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        departments = managed_departments(user)
        self.fields["department"].queryset = departments
        self.fields["doctor"].queryset = (
            User.objects.filter(is_active=True, groups__name=Role.DOCTOR, staff_departments__department__in=departments)
            .distinct()
            .order_by("full_name", "username")
        )


class HolidayForm(forms.Form):
    date = forms.DateField(label=gettext_lazy("Date"), widget=_date_input())
    name = forms.CharField(label=pgettext_lazy("thing", "Name"), max_length=100)
    department = forms.ModelChoiceField(
        label=gettext_lazy("Department"),
        queryset=Department.objects.none(),
        required=False,
        empty_label=gettext_lazy("The whole hospital"),
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = managed_departments(user)
        if not manages_all_departments(user):
            self.fields["department"].required = True
            self.fields["department"].empty_label = None


class StopForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)
    confirm = forms.BooleanField(
        label=gettext_lazy("I understand that every booking of this session is cancelled and each patient is told."),
    )


class ExtraPlacesForm(forms.Form):
    slot = forms.ChoiceField(label=gettext_lazy("Time slot"), required=False)
    channel = forms.ChoiceField(
        label=gettext_lazy("For bookings by"), choices=BookingChannel.choices, initial=BookingChannel.WINDOW
    )
    count = forms.CharField(label=gettext_lazy("Extra places"), initial=1, widget=_number(min=1))

    def __init__(self, *args, slots, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.slots = {str(slot.uuid): slot for slot in slots}
        self.fields["slot"].choices = [("", _("The last slot"))] + [
            (key, timezone.localtime(slot.starts_at).strftime("%H:%M")) for key, slot in self.slots.items()
        ]


class BookingRulesForm(forms.Form):
    release_days_ahead = forms.CharField(label=gettext_lazy("Days released ahead"), widget=_number(min=0))
    release_time = forms.TimeField(label=gettext_lazy("Release time"), widget=_time_input())
    window_fallback_hours = forms.CharField(
        label=gettext_lazy("Hours before a session that unused online places go to the window"),
        widget=_number(min=0),
        help_text=gettext_lazy("0 keeps online places for online bookings only."),
    )
    hold_minutes = forms.CharField(label=gettext_lazy("Minutes a chosen slot is held"), widget=_number(min=1))
    cancel_days_before = forms.CharField(
        label=gettext_lazy("Cancellation deadline: days before"),
        widget=_number(min=0),
        help_text=gettext_lazy("0 means the same day."),
    )
    cancel_time = forms.TimeField(label=gettext_lazy("Cancellation deadline: time"), widget=_time_input())
    max_open_bookings = forms.CharField(label=gettext_lazy("Open bookings per patient"), widget=_number(min=1))
    no_show_limit = forms.CharField(
        label=gettext_lazy("No-shows that block online booking"),
        widget=_number(min=0),
        help_text=gettext_lazy("0 never blocks."),
    )
    no_show_window_days = forms.CharField(label=gettext_lazy("Counted over (days)"), widget=_number(min=1))
    no_show_block_days = forms.CharField(label=gettext_lazy("Online booking blocked for (days)"), widget=_number(min=1))
    reminder_time = forms.TimeField(label=gettext_lazy("Reminder the day before at"), widget=_time_input())
    waitlist_offer_minutes = forms.CharField(
        label=gettext_lazy("Minutes to accept a waitlist offer"), widget=_number(min=5)
    )
    login_code_minutes = forms.CharField(label=gettext_lazy("Minutes a sign-in code is valid"), widget=_number(min=1))
