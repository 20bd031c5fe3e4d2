"""Console pages for doctor schedules: weekly templates, holidays, sessions, stopping a clinic, extra places."""

from __future__ import annotations

urlpatterns: list = []
