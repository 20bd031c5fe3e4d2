"""Expected refusals are not logged as warnings; every other client or server error still is."""

from __future__ import annotations

import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.log import log_response

from hcrm.logs import refusal_expected


def _logged(caplog, status: int, *, expected: bool) -> list[tuple[str, int, str]]:
    request = RequestFactory().post("/portal/book/")
    if expected:
        refusal_expected(request)
    with caplog.at_level(logging.INFO, logger="django.request"):
        log_response("%s: %s", "Answer", request.path, response=HttpResponse(status=status), request=request)
    return [(record.name, record.levelno, record.getMessage()) for record in caplog.records]


def test_a_refusal_marked_expected_is_not_logged(caplog):
    assert _logged(caplog, 409, expected=True) == []


@pytest.mark.parametrize("status", [400, 403, 404, 409])
def test_other_client_errors_are_still_logged_as_warnings(caplog, status):
    assert _logged(caplog, status, expected=False) == [("django.request", logging.WARNING, "Answer: /portal/book/")]


@pytest.mark.parametrize(("status", "level"), [(400, logging.WARNING), (500, logging.ERROR)])
def test_a_marked_request_that_ends_otherwise_is_still_logged(caplog, status, level):
    assert _logged(caplog, status, expected=True) == [("django.request", level, "Answer: /portal/book/")]
