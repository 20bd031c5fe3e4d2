"""Console pages of messages."""

urlpatterns: list = []
