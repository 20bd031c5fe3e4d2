"""The project's URLs plus one bench-only door: a signed-in portal account books a slot for a family member.

It stands in for the portal's booking endpoint so the benchmark measures the booking service behind a real
HTTP server (session lookup, middleware, audit context, one transaction) without depending on the pages.
"""

from __future__ import annotations

import json
import time
import uuid

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from appointments.models import BookingChannel, FamilyMember
from appointments.selectors import slot_to_book
from appointments.services import BookingDoor, BookingRefused, appointment_book
from hcrm.urls import urlpatterns as project_urlpatterns

SESSION_KEY = "bench_portal_account"


def timed(view):
    """The view's own time in a Server-Timing header, to tell service time from waiting for a server thread."""

    def wrapper(request: HttpRequest) -> JsonResponse:
        started = time.perf_counter()
        response = view(request)
        response["Server-Timing"] = f"view;dur={(time.perf_counter() - started) * 1000:.2f}"
        return response

    return wrapper


@csrf_exempt
@require_POST
@timed
def book(request: HttpRequest) -> JsonResponse:
    account_id = request.session.get(SESSION_KEY)
    if account_id is None:
        return JsonResponse({"code": "login"}, status=401)
    try:
        data = json.loads(request.body)
        patient_key, slot_key = uuid.UUID(data["patient"]), uuid.UUID(data["slot"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"code": "invalid"}, status=400)
    member = (
        FamilyMember.objects.select_related("patient", "account")
        .filter(account_id=account_id, account__is_active=True, patient__uuid=patient_key)
        .first()
    )
    if member is None:
        return JsonResponse({"code": "forbidden"}, status=403)
    slot = slot_to_book(slot_key)
    if slot is None:
        return JsonResponse({"code": "not_found"}, status=404)
    door = BookingDoor(channel=BookingChannel.ONLINE, portal_account=member.account)
    try:
        appointment = appointment_book(patient=member.patient, slot=slot, door=door)
    except BookingRefused as refusal:
        body: dict = {"code": refusal.rule}
        if refusal.rule == "full":
            # What the booking page would refresh: places still free online with this doctor and in the
            # department that day, read with the slot.
            body["free_in_session"] = slot.free_in_session
            body["free_that_day"] = slot.free_that_day
        return JsonResponse(body, status=409)
    return JsonResponse({"appointment": str(appointment.uuid), "visit_number": appointment.visit_number}, status=201)


urlpatterns = [path("bench/book/", book), *project_urlpatterns]
