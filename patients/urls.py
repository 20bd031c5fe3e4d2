from django.urls import include, path

from patients.views import archive as views
from patients.views import contacts, imports, messages, outreach, segments
from patients.views import identity as identity_views

app_name = "patients"

urlpatterns = [
    path("", views.patient_search, name="search"),
    path("new/", views.patient_create, name="create"),
    path("export.<str:file_format>", views.patient_export, name="export"),
    path("<uuid:uuid>/", views.patient_detail, name="detail"),
    path("<uuid:uuid>/edit/", views.patient_edit, name="edit"),
    path("<uuid:uuid>/reveal/", views.patient_reveal, name="reveal"),
    path("<uuid:uuid>/consent/", views.patient_consent, name="consent"),
    path("<uuid:uuid>/access/", views.patient_access_history, name="access-history"),
    path("segments/", include(outreach.urlpatterns)),
    path("segments/", include(segments.urlpatterns)),
    path("contacts/", include(contacts.urlpatterns)),
    path("messages/", include(messages.urlpatterns)),
    path("identity/", include(identity_views.urlpatterns)),
    path("imports/", include(imports.urlpatterns)),
]
