"""REST API of the patients app: one module per concern, each registering its viewsets."""

from patients.api import archive, contacts, messages, segments


def register(router) -> None:
    for module in (archive, segments, contacts, messages):
        module.register(router)


def urls() -> list:
    """API paths outside the router (provider webhooks)."""
    return messages.urlpatterns()
