"""REST API of the patients app: one module per concern, each registering its viewsets."""

from patients.api import archive, contacts, messages, segments
from patients.api import identity as identity_api
from patients.api import imports as imports_api


def register(router) -> None:
    for module in (archive, segments, contacts, messages, imports_api):
        module.register(router)
    identity_api.register(router)


def urls() -> list:
    """API paths outside the router (provider webhooks)."""
    return messages.urlpatterns()
