"""Staff console URLs of the follow-ups app."""

from followups.views import builder, questionnaires

app_name = "followups"

urlpatterns = [*questionnaires.urlpatterns, *builder.urlpatterns]
