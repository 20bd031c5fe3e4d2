"""Settings of the server the booking benchmark starts: the project's own, plus the bench booking door."""

from hcrm.settings import *  # noqa: F403

ROOT_URLCONF = "bench.booking_urls"
