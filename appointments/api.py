"""REST API for schedules, slots and bookings (DRF; thin: the services decide)."""

from __future__ import annotations


def register(router) -> None:
    """Add this app's viewsets to the API router."""


def urls() -> list:
    """API paths that are not viewsets."""
    return []
