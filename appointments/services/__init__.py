"""Every write of the appointments app."""

from appointments.services.booking import (
    BookingDoor,
    BookingRefused,
    appointment_book,
    appointment_cancel,
    appointment_check_in,
    appointment_confirm,
    appointment_hold,
    appointment_reschedule,
    booking_rules_check,
    cancel_deadline,
    holds_expire,
    no_shows_mark,
    restriction_lift,
)
from appointments.services.his import his_appointment_sync
from appointments.services.waitlist import waitlist_accept, waitlist_join, waitlist_leave, waitlist_offer

__all__ = [
    "BookingDoor",
    "BookingRefused",
    "appointment_book",
    "appointment_cancel",
    "appointment_check_in",
    "appointment_confirm",
    "appointment_hold",
    "appointment_reschedule",
    "booking_rules_check",
    "cancel_deadline",
    "his_appointment_sync",
    "holds_expire",
    "no_shows_mark",
    "restriction_lift",
    "waitlist_accept",
    "waitlist_join",
    "waitlist_leave",
    "waitlist_offer",
]
