"""Source profiles in the console: the list (with senders that have none), create and edit."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from integrations.forms import SourceProfileForm
from integrations.models import Protocol, SourceProfile
from integrations.profiles import source_profile_create, source_profile_update
from integrations.selectors import senders_without_profile

UNPROFILED_DAYS = 7


@login_required
@permission_required("integrations.view_sourceprofile", raise_exception=True)
def profile_list(request: HttpRequest) -> HttpResponse:
    context = {
        "profiles": SourceProfile.objects.order_by("protocol", "sending_application", "sending_facility"),
        "unprofiled": senders_without_profile(days=UNPROFILED_DAYS),
        "unprofiled_days": UNPROFILED_DAYS,
    }
    return render(request, "integrations/profiles.html", context)


def _initial_for_sender(request: HttpRequest) -> dict:
    """A new profile's fields from `?sender=APP^FACILITY&protocol=...`, with the model's default tables."""
    defaults = SourceProfile()
    initial = SourceProfileForm.initial_from(defaults)
    application, _separator, facility = request.GET.get("sender", "").partition("^")
    protocol = request.GET.get("protocol", Protocol.HL7V2)
    initial.update(
        {
            "sending_application": application[:100],
            "sending_facility": facility[:100],
            "name": " ".join(part for part in (application, facility) if part)[:100],
            "protocol": protocol if protocol in Protocol.values else Protocol.HL7V2,
        }
    )
    return initial


def _editor(request: HttpRequest, profile: SourceProfile | None) -> HttpResponse:
    initial = SourceProfileForm.initial_from(profile) if profile else _initial_for_sender(request)
    form = SourceProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if profile is None:
                profile = source_profile_create(actor=request.user, data=form.data_for_service())
            else:
                source_profile_update(actor=request.user, profile=profile, data=form.data_for_service())
        except ValidationError as error:
            for field, errors in error.error_dict.items():
                form.add_error(field if field in form.fields and field != NON_FIELD_ERRORS else None, errors)
        else:
            flash.success(request, _("Source profile %(name)s saved.") % {"name": profile.name})
            return redirect("integration_console:profile-edit", uuid=profile.uuid)
    return render(
        request,
        "integrations/profile_form.html",
        {"form": form, "profile": profile},
        status=400 if form.errors else 200,
    )


@login_required
@permission_required("integrations.add_sourceprofile", raise_exception=True)
def profile_create(request: HttpRequest) -> HttpResponse:
    return _editor(request, None)


@login_required
@permission_required("integrations.change_sourceprofile", raise_exception=True)
def profile_edit(request: HttpRequest, uuid) -> HttpResponse:
    return _editor(request, get_object_or_404(SourceProfile, uuid=uuid))
