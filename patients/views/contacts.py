"""Console pages of contacts."""

urlpatterns: list = []
