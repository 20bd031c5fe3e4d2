"""Staff console URLs of the statistics pages."""

from analytics import views

app_name = "analytics"

urlpatterns = [*views.urlpatterns]
