"""The patient portal: mobile-first pages to sign in with an SMS code, book, cancel and reschedule."""

from django.urls import path

from appointments.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("sign-in/", views.sign_in, name="sign-in"),
    path("sign-in/code/", views.sign_in_code, name="sign-in-code"),
    path("register/", views.register, name="register"),
    path("sign-out/", views.sign_out, name="sign-out"),
    path("book/", views.book_departments, name="book"),
    path("book/department/<uuid:department>/", views.book_doctors, name="book-department"),
    path("book/doctor/<uuid:doctor>/", views.book_doctor, name="book-doctor"),
    path("book/session/<uuid:schedule>/", views.book_session, name="book-session"),
    path("book/session/<uuid:schedule>/waitlist/", views.waitlist_join_view, name="waitlist-join"),
    path("appointments/", views.my_appointments, name="appointments"),
    path("appointments/<uuid:appointment>/", views.appointment_detail, name="appointment"),
    path("appointments/<uuid:appointment>/confirm/", views.confirm, name="confirm"),
    path("appointments/<uuid:appointment>/cancel/", views.cancel, name="cancel"),
    path("appointments/<uuid:appointment>/reschedule/", views.reschedule, name="reschedule"),
    path("waitlist/<uuid:entry>/", views.waitlist_offer, name="waitlist-offer"),
    path("family/", views.family, name="family"),
    path("family/<uuid:member>/remove/", views.family_remove, name="family-remove"),
]
