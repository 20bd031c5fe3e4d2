"""API of contacts."""


def register(router) -> None:
    pass
