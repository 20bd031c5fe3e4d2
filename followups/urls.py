"""Staff console URLs of the follow-ups app."""

from followups.views import plans, worklists

app_name = "followups"

urlpatterns = [*worklists.urlpatterns, *plans.urlpatterns]
