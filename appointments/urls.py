"""Staff console URLs of the appointments app."""

from appointments.views import bookings, schedules

app_name = "appointments"

urlpatterns = [*schedules.urlpatterns, *bookings.urlpatterns]
