"""Staff console URLs of the follow-ups app."""

from followups.views import alerts, builder, calls, letters, plans, questionnaires, research, worklists

app_name = "followups"

urlpatterns = [
    *worklists.urlpatterns,
    *calls.urlpatterns,
    *letters.urlpatterns,
    *plans.urlpatterns,
    *questionnaires.urlpatterns,
    *builder.urlpatterns,
    *research.urlpatterns,
    *alerts.urlpatterns,
]
