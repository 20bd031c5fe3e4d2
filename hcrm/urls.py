from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from appointments import api as appointments_api
from followups import api as followups_api
from hcrm import api as platform_api
from hcrm import views
from integrations import api as integrations_api
from patients import api as patients_api

router = DefaultRouter()
platform_api.register(router)
patients_api.register(router)
appointments_api.register(router)
followups_api.register(router)

api_v1 = [
    path("auth/token/", platform_api.TokenView.as_view(), name="api-token"),
    path("me/", platform_api.MeView.as_view(), name="api-me"),
    *patients_api.urls(),
    *integrations_api.urls(),
    *appointments_api.urls(),
    *followups_api.urls(),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("audit/", views.audit_trail, name="audit-trail"),
    path("health/", views.health, name="health"),
    path("patients/", include("patients.urls")),
    path("integrations/", include("integrations.console_urls")),
    path("appointments/", include("appointments.urls")),
    path("followups/", include("followups.urls")),
    path("analytics/", include("analytics.urls")),
    path("portal/", include("appointments.portal.urls")),
    path("f/", include("followups.link_urls")),
    path("api/v1/", include(api_v1)),
    path("fhir/R4/", include("integrations.fhir.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("admin/", admin.site.urls),
]

handler404 = "hcrm.views.not_found"
handler403 = "hcrm.views.forbidden"
handler500 = "hcrm.views.server_error"
