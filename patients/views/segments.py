"""Console pages of segments."""

urlpatterns: list = []
