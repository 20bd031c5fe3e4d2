"""Appointments: doctor schedules and slots, bookings, the waitlist, the patient portal, HIS appointments."""

from appointments.models.bookings import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatus,
    BookingRestriction,
    CancelledBy,
    WaitlistEntry,
    WaitlistStatus,
)
from appointments.models.his import HisAppointment, HisAppointmentStatus
from appointments.models.portal import FamilyMember, LoginCode, PortalAccount, Relationship
from appointments.models.schedules import (
    BookingChannel,
    BookingPolicy,
    ClinicLevel,
    ClinicSession,
    DoctorProfile,
    Holiday,
    Schedule,
    ScheduleStatus,
    ScheduleTemplate,
    Slot,
)

__all__ = [
    "ACTIVE_STATUSES",
    "Appointment",
    "AppointmentStatus",
    "BookingChannel",
    "BookingPolicy",
    "BookingRestriction",
    "CancelledBy",
    "ClinicLevel",
    "ClinicSession",
    "DoctorProfile",
    "FamilyMember",
    "HisAppointment",
    "HisAppointmentStatus",
    "Holiday",
    "LoginCode",
    "PortalAccount",
    "Relationship",
    "Schedule",
    "ScheduleStatus",
    "ScheduleTemplate",
    "Slot",
    "WaitlistEntry",
    "WaitlistStatus",
]
