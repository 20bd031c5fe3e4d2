"""Staff console URLs of the follow-ups app."""

from followups.views import builder, calls, letters, plans, questionnaires, worklists

app_name = "followups"

urlpatterns = [
    *worklists.urlpatterns,
    *calls.urlpatterns,
    *letters.urlpatterns,
    *plans.urlpatterns,
    *questionnaires.urlpatterns,
    *builder.urlpatterns,
]
