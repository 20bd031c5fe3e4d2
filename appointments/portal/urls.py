from django.urls import path

from appointments.portal import views

app_name = "portal"

urlpatterns = [
    path("waitlist/<uuid:entry>/", views.waitlist_offer, name="waitlist-offer"),
]
