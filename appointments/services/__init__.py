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
from appointments.services.portal import (
    CodeRequested,
    family_member_add,
    family_member_remove,
    login_code_request,
    login_code_verify,
    portal_label,
    portal_register,
)
from appointments.services.waitlist import waitlist_accept, waitlist_join, waitlist_leave, waitlist_offer

__all__ = [
    "BookingDoor",
    "BookingRefused",
    "CodeRequested",
    "appointment_book",
    "appointment_cancel",
    "appointment_check_in",
    "appointment_confirm",
    "appointment_hold",
    "appointment_reschedule",
    "booking_rules_check",
    "cancel_deadline",
    "family_member_add",
    "family_member_remove",
    "login_code_request",
    "login_code_verify",
    "holds_expire",
    "no_shows_mark",
    "portal_label",
    "portal_register",
    "restriction_lift",
    "waitlist_accept",
    "waitlist_join",
    "waitlist_leave",
    "waitlist_offer",
]
