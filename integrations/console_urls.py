"""Console pages of the integration engine, under /integrations/."""

from django.urls import path

from integrations.views import messages, overview, profiles

app_name = "integration_console"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("errors/", messages.error_list, name="errors"),
    path("search/", messages.message_search, name="search"),
    path("messages/<uuid:uuid>/", messages.message_detail, name="message"),
    path("messages/<uuid:uuid>/reprocess/", messages.message_reprocess, name="message-reprocess"),
    path("sources/", profiles.profile_list, name="profiles"),
    path("sources/new/", profiles.profile_create, name="profile-create"),
    path("sources/<uuid:uuid>/", profiles.profile_edit, name="profile-edit"),
    path("sources/<uuid:uuid>/reprocess/", messages.source_reprocess, name="source-reprocess"),
]
