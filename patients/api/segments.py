"""API of segments."""


def register(router) -> None:
    pass
