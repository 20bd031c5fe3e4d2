"""Logging the project configures: expected refusals are answers, not server warnings.

Django logs every 4xx answer at WARNING on `django.request`. At the release of a day's places
(放号) most booking tries are refused because the place was just taken: an outcome the patient
expects and the answer reports, thousands of times a minute. A view marks such an answer with
`refusal_expected`, and `ExpectedRefusalFilter` keeps it out of the log; every other 4xx and every
5xx is logged as before.
"""

from __future__ import annotations

import logging

EXPECTED_STATUS = 409  # Conflict: the request was understood, the state of things says no


def refusal_expected(request) -> None:
    """Mark this request's 409 answer as an expected refusal (a place already taken), not worth a warning."""
    request.refusal_expected = True


class ExpectedRefusalFilter(logging.Filter):
    """Drops `django.request` warnings about 409 answers their view marked with `refusal_expected`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or getattr(record, "status_code", None) != EXPECTED_STATUS:
            return True
        return not getattr(getattr(record, "request", None), "refusal_expected", False)
