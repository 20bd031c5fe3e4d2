"""Console pages for bookings: a doctor's day, a department's grid, booking for a caller, check-in."""

from __future__ import annotations

urlpatterns: list = []
