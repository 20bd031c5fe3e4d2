"""Patient-facing follow-up link pages under /f/ (no sign-in: the token is the key)."""

from followups.views.links import app_name, urlpatterns  # noqa: F401
