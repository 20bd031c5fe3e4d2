"""Portal pages of the account: signing in with an SMS code, registering, the home page, family members."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from appointments.models import AppointmentStatus, FamilyMember
from appointments.portal.forms import CodeForm, FamilyMemberForm, MobileForm, RegisterForm, errors_onto
from appointments.portal.session import (
    PENDING_MOBILE_KEY,
    portal_account,
    portal_audit_as,
    portal_required,
    portal_sign_in,
    portal_sign_out,
    safe_next,
)
from appointments.portal.views.common import account_members, audit_portal_read, client_address, refusal_show
from appointments.selectors import account_appointments
from appointments.services import (
    family_member_add,
    family_member_remove,
    login_code_request,
    login_code_verify,
    portal_label,
    portal_register,
)
from hcrm.audit import Event, audit_acting_as, audit_read
from hcrm.masking import mask_phone

# --- Signing in -------------------------------------------------------------------------------------


def sign_in(request: HttpRequest) -> HttpResponse:
    if portal_account(request) is not None and request.method == "GET":
        return redirect(safe_next(request, reverse("portal:home")))
    form = MobileForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        portal_audit_as(form.cleaned_data["mobile"])
        try:
            requested = login_code_request(mobile=form.cleaned_data["mobile"], client_address=client_address(request))
        except ValidationError as error:
            errors_onto(form, error)
        else:
            request.session[PENDING_MOBILE_KEY] = requested.mobile
            return _to_code_page(request)
    return render(request, "appointments/portal/sign_in.html", {"form": form, "next": safe_next(request, "")})


def _to_code_page(request) -> HttpResponse:
    target = reverse("portal:sign-in-code")
    next_url = safe_next(request, "")
    return redirect(f"{target}?{urlencode({'next': next_url})}" if next_url else target)


def sign_in_code(request: HttpRequest) -> HttpResponse:
    mobile = request.session.get(PENDING_MOBILE_KEY)
    if not mobile:
        return redirect("portal:sign-in")
    form = CodeForm(request.POST or None)
    portal_audit_as(mobile)
    if request.method == "POST" and form.is_valid():
        try:
            account = login_code_verify(mobile=mobile, code=form.cleaned_data["code"])
        except ValidationError as error:
            errors_onto(form, error)
        else:
            portal_sign_in(request, account)
            with audit_acting_as(portal_label(account.mobile)):
                audit_read(event=Event.LOGIN, details={"portal_account": str(account.uuid)})
            return redirect(safe_next(request, reverse("portal:home")))
    context = {"form": form, "masked_mobile": mask_phone(mobile), "next": safe_next(request, "")}
    return render(request, "appointments/portal/sign_in_code.html", context)


def register(request: HttpRequest) -> HttpResponse:
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        portal_audit_as(form.cleaned_data["mobile"])
        try:
            requested = portal_register(client_address=client_address(request), **form.cleaned_data)
        except ValidationError as error:
            errors_onto(form, error)
        else:
            request.session[PENDING_MOBILE_KEY] = requested.mobile
            return _to_code_page(request)
    return render(request, "appointments/portal/register.html", {"form": form, "next": safe_next(request, "")})


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    portal_sign_out(request)
    return redirect("portal:sign-in")


# --- Home -------------------------------------------------------------------------------------------


@portal_required
def home(request: HttpRequest) -> HttpResponse:
    members = account_members(request)
    upcoming = (
        account_appointments(request.portal_account)
        .filter(status__in=[AppointmentStatus.HELD, AppointmentStatus.BOOKED], slot__ends_at__gt=timezone.now())
        .count()
    )
    return render(request, "appointments/portal/home.html", {"members": members, "upcoming": upcoming})


# --- Family members ----------------------------------------------------------------------------------


@portal_required
def family(request: HttpRequest) -> HttpResponse:
    form = FamilyMemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            family_member_add(account=request.portal_account, **form.cleaned_data)
        except ValidationError as error:
            errors_onto(form, error)
        else:
            messages.success(request, _("Family member added."))
            return redirect("portal:family")
    members = account_members(request)
    audit_portal_read(request, [member.patient.uuid for member in members], event=Event.LIST)
    return render(request, "appointments/portal/family.html", {"members": members, "form": form})


@portal_required
@require_POST
def family_remove(request: HttpRequest, member) -> HttpResponse:
    member = get_object_or_404(FamilyMember, uuid=member, account=request.portal_account)
    try:
        family_member_remove(member=member)
    except ValidationError as error:
        refusal_show(request, error)
    else:
        messages.success(request, _("Family member removed."))
    return redirect("portal:family")
