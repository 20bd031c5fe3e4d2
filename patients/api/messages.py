"""API of messages."""


def register(router) -> None:
    pass
