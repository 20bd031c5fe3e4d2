"""The project's URLs plus one bench-only door: a signed-in portal account books a slot for a family member.

It stands in for the portal's booking page with a JSON answer, and runs the portal's own code: the
portal's sign-in session (`portal_required`: account, sign-in age, idle expiry, audit attribution),
the account's family member and the slot as booking reads it, in one statement
(`member_patient_and_slot`), and the booking service every door calls (`appointment_book`, which
queues the confirmation in the outbox in the same transaction). It books in one step where the
portal holds then confirms, and it skips the CSRF check a form post passes. A refusal is an answer
the patient expects, not logged as a warning (`refusal_expected`).
"""

from __future__ import annotations

import json
import time
import uuid

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from appointments.portal.session import portal_required
from appointments.portal.views.common import booking_door, member_patient_and_slot
from appointments.services import BookingRefused, appointment_book
from hcrm.logs import refusal_expected
from hcrm.urls import urlpatterns as project_urlpatterns


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
@portal_required
def book(request: HttpRequest) -> JsonResponse:
    try:
        data = json.loads(request.body)
        patient_key, slot_key = data["patient"], uuid.UUID(data["slot"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"code": "invalid"}, status=400)
    patient, slot = member_patient_and_slot(request, patient_key, slot_key)
    if slot is None:
        return JsonResponse({"code": "not_found"}, status=404)
    try:
        appointment = appointment_book(patient=patient, slot=slot, door=booking_door(request))
    except BookingRefused as refusal:
        body: dict = {"code": refusal.rule}
        if refusal.rule == "full":
            # What the booking page would refresh: places still free online with this doctor and in the
            # department that day, read with the slot.
            body["free_in_session"] = slot.free_in_session
            body["free_that_day"] = slot.free_that_day
        refusal_expected(request)
        return JsonResponse(body, status=409)
    return JsonResponse({"appointment": str(appointment.uuid), "visit_number": appointment.visit_number}, status=201)


urlpatterns = [path("bench/book/", book), *project_urlpatterns]
