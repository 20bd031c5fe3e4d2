"""Portal pages: load, call a service, render. Every page but sign-in and registration needs a signed-in account."""

from appointments.portal.views.accounts import family, family_remove, home, register, sign_in, sign_in_code, sign_out
from appointments.portal.views.booking import (
    appointment_detail,
    book_departments,
    book_doctor,
    book_doctors,
    book_session,
    cancel,
    confirm,
    my_appointments,
    reschedule,
    waitlist_join_view,
    waitlist_offer,
)

__all__ = [
    "appointment_detail",
    "book_departments",
    "book_doctor",
    "book_doctors",
    "book_session",
    "cancel",
    "confirm",
    "family",
    "family_remove",
    "home",
    "my_appointments",
    "register",
    "reschedule",
    "sign_in",
    "sign_in_code",
    "sign_out",
    "waitlist_join_view",
    "waitlist_offer",
]
