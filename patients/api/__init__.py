"""REST API of the patients app: one module per concern, each registering its viewsets."""

from patients.api import archive


def register(router) -> None:
    archive.register(router)
