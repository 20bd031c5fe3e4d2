from django.urls import path

from integrations.fhir import views

app_name = "fhir"

urlpatterns = [
    path("", views.SystemView.as_view(), name="system"),
    path("metadata", views.MetadataView.as_view(), name="metadata"),
    path("Patient/<str:resource_id>/$everything", views.EverythingView.as_view(), name="everything"),
    path("<str:resource_type>", views.TypeView.as_view(), name="type"),
    path("<str:resource_type>/<str:resource_id>", views.InstanceView.as_view(), name="instance"),
]
