"""The error queue, one stored message (raw, parsed, reason), reprocessing, and the raw message search."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from hcrm.audit import Event, audit_read
from integrations.forms import ErrorQueueFilterForm, InboundSearchForm
from integrations.models import InboundMessage, Protocol, SourceProfile
from integrations.reprocessing import REPROCESS_INLINE_LIMIT, inbound_reprocess, source_reprocess_all
from integrations.selectors import ERROR_STATUSES, error_queue, inbound_search
from integrations.views.display import charset_of, decode, fhir_pretty, hl7_parsed, hl7_segments
from patients.views.archive import PAGE_SIZE, _Page, _query_without_page


def _page_number(request: HttpRequest) -> int:
    try:
        return max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        return 1


def _page(rows, number: int) -> _Page:
    return _Page(list(rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE + 1]), number)


@login_required
@permission_required("integrations.view_inboundmessage", raise_exception=True)
def error_list(request: HttpRequest) -> HttpResponse:
    """Failed and rejected messages, newest first; filter by source, sender, type and received date."""
    form = ErrorQueueFilterForm(request.GET or None)
    filters = form.filters() if form.is_valid() else {}
    page = _page(error_queue(**filters), _page_number(request))
    context = {
        "form": form,
        "page": page,
        "query_string": _query_without_page(request),
        "source": filters.get("source"),
        "reprocess_inline_limit": REPROCESS_INLINE_LIMIT,
    }
    return render(request, "integrations/errors.html", context)


def _raw_views(message: InboundMessage) -> dict:
    raw = bytes(message.raw)
    default = message.source.default_charset if message.source else "utf-8"
    charset = charset_of(raw, default) if message.protocol == Protocol.HL7V2 else "utf-8"
    text = decode(raw, charset)
    if message.protocol == Protocol.HL7V2:
        segments = hl7_segments(text)
        return {"charset": charset, "segments": segments, "parsed": hl7_parsed(segments)}
    pretty, problem = fhir_pretty(text)
    return {"charset": charset, "json": pretty, "json_problem": problem}


@login_required
@permission_required("integrations.view_inboundmessage", raise_exception=True)
def message_detail(request: HttpRequest, uuid) -> HttpResponse:
    message = get_object_or_404(InboundMessage.objects.select_related("source", "patient", "duplicate_of"), uuid=uuid)
    show_raw = request.user.has_perm("integrations.view_raw_inboundmessage")
    context = {"message": message, "show_raw": show_raw, "can_reprocess": False}
    if show_raw:
        context.update(_raw_views(message))
    context["can_reprocess"] = (
        message.protocol == Protocol.HL7V2
        and message.status in ERROR_STATUSES
        and request.user.has_perm("integrations.reprocess_inboundmessage")
    )
    audit_read(
        event=Event.VIEW,
        instance=message,
        patient_uuid=message.patient.uuid if message.patient else None,
        details={"record": "inbound_message", "control_id": message.control_id, "raw": show_raw},
    )
    return render(request, "integrations/message.html", context)


@login_required
@require_POST
@permission_required("integrations.reprocess_inboundmessage", raise_exception=True)
def message_reprocess(request: HttpRequest, uuid) -> HttpResponse:
    message = get_object_or_404(InboundMessage, uuid=uuid)
    try:
        result = inbound_reprocess(message=message, actor=request.user)
    except ValidationError as error:
        flash.error(request, " ".join(error.messages))
    else:
        if result.status == InboundMessage.Status.APPLIED:
            flash.success(request, _("The message was reprocessed and applied."))
        else:
            flash.error(
                request,
                _("The message was reprocessed and is %(status)s: %(error)s")
                % {"status": result.get_status_display(), "error": result.error or result.error_code},
            )
    return redirect("integration_console:message", uuid=message.uuid)


@login_required
@require_POST
@permission_required("integrations.reprocess_inboundmessage", raise_exception=True)
def source_reprocess(request: HttpRequest, uuid) -> HttpResponse:
    """Reprocess every failed or rejected message of a source, e.g. after its profile was fixed."""
    profile = get_object_or_404(SourceProfile, uuid=uuid)
    outcome = source_reprocess_all(profile=profile, actor=request.user)
    if outcome.queued:
        flash.info(request, _("Many messages are waiting: they are being reprocessed in the background."))
    elif outcome.reprocessed == 0:
        flash.info(request, _("No failed or rejected HL7 message of this source is waiting."))
    else:
        flash.success(
            request,
            _("%(count)s messages reprocessed, %(applied)s applied.")
            % {"count": outcome.reprocessed, "applied": outcome.applied},
        )
    return redirect(f"{reverse('integration_console:errors')}?{urlencode({'source': profile.uuid})}")


@login_required
@permission_required("integrations.view_inboundmessage", raise_exception=True)
def message_search(request: HttpRequest) -> HttpResponse:
    """Raw messages by exact control id or patient identifier; every search is audited."""
    form = InboundSearchForm(request.GET or None)
    page = None
    if form.is_valid():
        data = form.cleaned_data
        page = _page(
            inbound_search(control_id=data["control_id"], identifier=data["identifier"]), _page_number(request)
        )
        audit_read(
            event=Event.SEARCH,
            details={
                "record": "inbound_message",
                "control_id": data["control_id"],
                "identifier": data["identifier"],
                "messages": [str(message.uuid) for message in page.object_list],
                "patients": sorted({str(message.patient.uuid) for message in page.object_list if message.patient}),
            },
        )
    return render(
        request,
        "integrations/search.html",
        {"form": form, "page": page, "query_string": _query_without_page(request)},
    )
