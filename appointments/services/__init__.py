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
from appointments.services.policy import booking_policy_update
from appointments.services.portal import (
    CodeRequested,
    family_member_add,
    family_member_remove,
    login_code_request,
    login_code_verify,
    portal_label,
    portal_register,
)
from appointments.services.schedules import (
    holiday_delete,
    holiday_save,
    schedule_add_capacity,
    schedule_stop,
    schedule_template_delete,
    schedule_template_save,
    schedules_generate,
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
    "booking_policy_update",
    "booking_rules_check",
    "cancel_deadline",
    "holiday_delete",
    "holiday_save",
    "family_member_add",
    "family_member_remove",
    "login_code_request",
    "login_code_verify",
    "his_appointment_sync",
    "holds_expire",
    "no_shows_mark",
    "portal_label",
    "portal_register",
    "restriction_lift",
    "schedule_add_capacity",
    "schedule_stop",
    "schedule_template_delete",
    "schedule_template_save",
    "schedules_generate",
    "waitlist_accept",
    "waitlist_join",
    "waitlist_leave",
    "waitlist_offer",
]
