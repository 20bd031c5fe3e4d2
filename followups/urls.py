"""Staff console URLs of the follow-ups app."""

from followups.views import alerts, builder, calls, plans, questionnaires, research, worklists

app_name = "followups"

urlpatterns = [
    *worklists.urlpatterns,
    *calls.urlpatterns,
    *plans.urlpatterns,
    *questionnaires.urlpatterns,
    *builder.urlpatterns,
    *research.urlpatterns,
    *alerts.urlpatterns,
]
