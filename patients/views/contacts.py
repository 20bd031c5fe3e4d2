"""Console pages of the contact log: log a contact, my contacts, the department review, a contact and its recording."""

from __future__ import annotations

import datetime as dt
import re

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from hcrm.audit import Event, audit_read
from hcrm.models import Department
from patients.models import (
    ContactChannel,
    ContactDirection,
    ContactEntry,
    ContactOutcome,
    ContactPurpose,
    ContactReview,
)
from patients.selectors import patients_visible_to
from patients.selectors.contacts import (
    contact_review_allowed,
    contact_reviews_visible,
    contacts_accessible_to,
    contacts_reviewable_by,
    contacts_visible_to,
    contacts_with_details,
    duration_text,
    recording_playable,
    reviewable_staff,
    reviewed_department_ids,
    user_reviews_all_contacts,
)
from patients.services.contacts import (
    RECORDING_FORMATS,
    RECORDING_MAX_BYTES,
    contact_record,
    contact_review_record,
)
from patients.views.recordings import recording_response

PAGE_SIZE = 25

# --- Forms ------------------------------------------------------------------------------------------------


class ContactLogForm(forms.Form):
    """A contact in a few clicks: the usual case (an outgoing follow-up call that reached the patient) is preselected."""

    channel = forms.ChoiceField(
        label=gettext_lazy("Channel"), choices=ContactChannel.choices, initial=ContactChannel.PHONE
    )
    direction = forms.ChoiceField(
        label=gettext_lazy("Direction"),
        choices=ContactDirection.choices,
        initial=ContactDirection.OUTBOUND,
        widget=forms.RadioSelect,
    )
    # Verification codes are sent by the system, never logged by hand.
    purpose = forms.ChoiceField(
        label=gettext_lazy("Purpose"),
        choices=[choice for choice in ContactPurpose.choices if choice[0] != ContactPurpose.VERIFICATION],
        initial=ContactPurpose.FOLLOW_UP,
    )
    outcome = forms.ChoiceField(
        label=gettext_lazy("Outcome"), choices=ContactOutcome.choices, initial=ContactOutcome.REACHED
    )
    occurred_at = forms.DateTimeField(
        label=gettext_lazy("Time"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=gettext_lazy("Leave empty for now."),
    )
    duration = forms.CharField(
        label=gettext_lazy("Duration"),
        required=False,
        max_length=8,
        widget=forms.TextInput(attrs={"placeholder": "5:30", "inputmode": "numeric", "autocomplete": "off"}),
        help_text=gettext_lazy("Minutes (5) or minutes:seconds (5:30)."),
    )
    summary = forms.CharField(
        label=gettext_lazy("Summary"), required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3})
    )
    recording = forms.FileField(
        label=gettext_lazy("Recording"),
        required=False,
        widget=forms.FileInput(attrs={"accept": ",".join(["audio/*", *(f".{ext}" for ext in RECORDING_FORMATS)])}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["recording"].help_text = _("Optional: %(formats)s, up to %(megabytes)d MB.") % {
            "formats": ", ".join(ext.upper() for ext in RECORDING_FORMATS),
            "megabytes": RECORDING_MAX_BYTES // 2**20,
        }

    def clean_duration(self) -> int | None:
        value = self.cleaned_data["duration"].strip()
        if not value:
            return None
        match = re.fullmatch(r"(\d{1,4})(?::([0-5]?\d))?", value)
        if match is None:
            raise ValidationError(_("Enter minutes (5) or minutes:seconds (5:30)."), code="invalid")
        return int(match[1]) * 60 + int(match[2] or 0)

    def add_service_errors(self, error: ValidationError) -> None:
        names = {"duration_seconds": "duration"}
        for field, errors in error.error_dict.items():
            name = names.get(field, field)
            self.add_error(name if name in self.fields else None, errors)


class ContactReviewForm(forms.Form):
    score = forms.TypedChoiceField(
        label=gettext_lazy("Score"),
        choices=[(score, str(score)) for score in range(1, 6)],
        coerce=int,
        widget=forms.RadioSelect,
        help_text=gettext_lazy("1 (poor) to 5 (excellent)"),
    )
    comment = forms.CharField(
        label=gettext_lazy("Comment"), required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3})
    )


def _any(choices) -> list[tuple[str, str]]:
    return [("", gettext_lazy("Any")), *choices]


class ContactFilterForm(forms.Form):
    since = forms.DateField(label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=_any(ContactChannel.choices), required=False)
    outcome = forms.ChoiceField(label=gettext_lazy("Outcome"), choices=_any(ContactOutcome.choices), required=False)

    def apply(self, contacts: QuerySet[ContactEntry]) -> QuerySet[ContactEntry]:
        data = self.cleaned_data
        if data["since"]:
            contacts = contacts.filter(occurred_at__gte=_day_start(data["since"]))
        if data["until"]:
            contacts = contacts.filter(occurred_at__lt=_day_start(data["until"] + dt.timedelta(days=1)))
        if data["channel"]:
            contacts = contacts.filter(channel=data["channel"])
        if data["outcome"]:
            contacts = contacts.filter(outcome=data["outcome"])
        return contacts


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight of the hospital's calendar day, so the filter uses the time index rather than a date cast."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class ContactReviewFilterForm(ContactFilterForm):
    staff = forms.ModelChoiceField(
        label=gettext_lazy("Staff member"), queryset=None, required=False, empty_label=gettext_lazy("Any")
    )
    department = forms.ModelChoiceField(
        label=gettext_lazy("Department"), queryset=None, required=False, empty_label=gettext_lazy("Any")
    )
    reviewed = forms.ChoiceField(
        label=gettext_lazy("Reviewed"),
        required=False,
        choices=[("", gettext_lazy("Any")), ("no", gettext_lazy("Not yet")), ("yes", gettext_lazy("Reviewed"))],
    )

    field_order = ["staff", "department", "since", "until", "channel", "outcome", "reviewed"]

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["staff"].queryset = reviewable_staff(user)
        departments = Department.objects.filter(is_active=True)
        if not user_reviews_all_contacts(user):
            departments = departments.filter(pk__in=sorted(reviewed_department_ids(user)))
        self.fields["department"].queryset = departments

    def apply(self, contacts: QuerySet[ContactEntry]) -> QuerySet[ContactEntry]:
        contacts = super().apply(contacts)
        data = self.cleaned_data
        if data["staff"]:
            contacts = contacts.filter(staff=data["staff"])
        if data["department"]:
            contacts = contacts.filter(department=data["department"])
        if data["reviewed"]:
            contacts = contacts.filter(is_reviewed=data["reviewed"] == "yes")
        return contacts


# --- Pages -------------------------------------------------------------------------------------------------


class _Page:
    """A page that knows whether another follows, without counting every contact."""

    def __init__(self, contacts: QuerySet[ContactEntry], request: HttpRequest) -> None:
        try:
            self.number = max(int(request.GET.get("page", 1)), 1)
        except ValueError:
            self.number = 1
        start = (self.number - 1) * PAGE_SIZE
        rows = list(contacts[start : start + PAGE_SIZE + 1])
        self.object_list = rows[:PAGE_SIZE]
        for contact in self.object_list:
            contact.duration_text = duration_text(contact.duration_seconds)
        self.has_next = len(rows) > PAGE_SIZE
        self.has_previous = self.number > 1


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _audit_listed(page: _Page, part: str) -> None:
    patients = sorted({str(contact.patient.uuid) for contact in page.object_list})
    audit_read(event=Event.LIST, details={"record": "contactentry", "part": part, "patients": patients})


@login_required
@permission_required("patients.add_contactentry", raise_exception=True)
def contact_log(request: HttpRequest, uuid) -> HttpResponse:
    """Log a contact with a patient: a fragment for the patient page, or a page of its own without JavaScript."""
    patient = get_object_or_404(patients_visible_to(request.user), uuid=uuid)
    if request.method == "POST":
        form = ContactLogForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                contact_record(
                    actor=request.user,
                    patient=patient,
                    channel=data["channel"],
                    direction=data["direction"],
                    purpose=data["purpose"],
                    outcome=data["outcome"],
                    occurred_at=data["occurred_at"],
                    duration_seconds=data["duration"],
                    summary=data["summary"].strip(),
                    recording=data["recording"],
                )
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, _("Contact logged."))
                return redirect("patients:detail", uuid=patient.uuid)
        status = 400
    else:
        form = ContactLogForm()
        status = 200
    if request.htmx and request.method == "GET":
        return render(request, "patients/contacts/_log_form.html", {"form": form, "patient_uuid": patient.uuid})
    audit_read(event=Event.VIEW, instance=patient, details={"part": "contact form"})
    return render(
        request,
        "patients/contacts/log.html",
        {"form": form, "patient_uuid": patient.uuid, "patient_name": patient.name},
        status=status,
    )


@login_required
@permission_required("patients.view_contactentry", raise_exception=True)
def contacts_mine(request: HttpRequest) -> HttpResponse:
    """The contacts the signed-in staff member has logged, newest first."""
    form = ContactFilterForm(request.GET or None)
    contacts = contacts_visible_to(request.user).filter(staff=request.user)
    if form.is_valid():
        contacts = form.apply(contacts)
    page = _Page(contacts.select_related("patient", "department").order_by("-occurred_at", "-id"), request)
    _audit_listed(page, "my contacts")
    return render(
        request,
        "patients/contacts/mine.html",
        {"form": form, "page": page, "query_string": _query_without_page(request)},
    )


@login_required
@permission_required(["patients.view_contactentry", "patients.review_contactentry"], raise_exception=True)
def contacts_review(request: HttpRequest) -> HttpResponse:
    """A supervisor's list of their departments' staff's contacts, to pick some to play and score."""
    form = ContactReviewFilterForm(request.GET or None, user=request.user)
    contacts = contacts_reviewable_by(request.user).annotate(
        is_reviewed=Exists(ContactReview.objects.filter(contact=OuterRef("pk"))),
        my_score=Subquery(
            ContactReview.objects.filter(contact=OuterRef("pk"), reviewer=request.user).values("score")[:1]
        ),
    )
    if form.is_valid():
        contacts = form.apply(contacts)
    page = _Page(contacts.select_related("patient", "staff", "department").order_by("-occurred_at", "-id"), request)
    _audit_listed(page, "review")
    return render(
        request,
        "patients/contacts/review.html",
        {"form": form, "page": page, "query_string": _query_without_page(request)},
    )


@login_required
@permission_required("patients.view_contactentry", raise_exception=True)
def contact_detail(request: HttpRequest, uuid) -> HttpResponse:
    """One contact: its details, the recording's player and, for its reviewers, the review form."""
    contact = get_object_or_404(contacts_with_details(contacts_accessible_to(request.user)), uuid=uuid)
    reviewable = contact_review_allowed(request.user, contact)
    mine = next((review for review in contact.reviews.all() if review.reviewer_id == request.user.pk), None)
    status = 200
    if request.method == "POST":
        if not reviewable:
            raise PermissionDenied
        form = ContactReviewForm(request.POST)
        if form.is_valid():
            try:
                contact_review_record(actor=request.user, contact=contact, **form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("Review saved."))
                return redirect("patients:contact-detail", uuid=contact.uuid)
        status = 400
    else:
        form = ContactReviewForm(initial={"score": mine.score, "comment": mine.comment} if mine else None)
        audit_read(event=Event.VIEW, instance=contact)
    context = {
        "contact": contact,
        "duration": duration_text(contact.duration_seconds),
        "patient_visible": patients_visible_to(request.user).filter(pk=contact.patient_id).exists(),
        "can_play": recording_playable(request.user, contact),
        "reviews": list(contact.reviews.all()) if contact_reviews_visible(request.user, contact) else None,
        "review_form": form if reviewable else None,
    }
    return render(request, "patients/contacts/detail.html", context, status=status)


@login_required
@require_GET
@permission_required("patients.view_contactentry", raise_exception=True)
def contact_recording(request: HttpRequest, uuid) -> HttpResponseBase:
    """The recording, never from a public URL: for its staff member, the department's reviewers and administrators."""
    contact = get_object_or_404(contacts_accessible_to(request.user).select_related("patient"), uuid=uuid)
    if not contact.recording:
        raise Http404
    if not recording_playable(request.user, contact):
        raise PermissionDenied
    return recording_response(request, contact)


urlpatterns = [
    path("", contacts_mine, name="contacts-mine"),
    path("review/", contacts_review, name="contacts-review"),
    path("log/<uuid:uuid>/", contact_log, name="contact-log"),
    path("<uuid:uuid>/", contact_detail, name="contact-detail"),
    path("<uuid:uuid>/recording/", contact_recording, name="contact-recording"),
]
