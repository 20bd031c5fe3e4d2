"""Sign-in code requests racing for one number are counted one at a time (PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from appointments.models import LoginCode
from appointments.services import login_code_request
from appointments.services import portal as portal_services
from patients.models import OutboundMessage
from tests.factories import PatientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

MOBILE = "+8613812345678"


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent requests need PostgreSQL's concurrent connections")


@pytest.fixture
def slow_check(monkeypatch):
    """Each request pauses after counting, so without a lock all of them would pass the limit."""
    original = portal_services._limits_check

    def check(**kwargs):
        original(**kwargs)
        time.sleep(0.3)

    monkeypatch.setattr(portal_services, "_limits_check", check)


def test_four_requests_at_once_send_one_code(slow_check):
    PatientFactory(mobile=MOBILE)
    start = threading.Barrier(4, timeout=10)
    outcomes: list = [None] * 4

    def request(index: int) -> None:
        try:
            start.wait()
            outcomes[index] = login_code_request(mobile=MOBILE, client_address=f"198.51.100.{index}").sent
        except ValidationError as error:
            outcomes[index] = error.error_dict["mobile"][0].code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes, key=str) == [True, "rate_limited", "rate_limited", "rate_limited"]
    assert LoginCode.objects.count() == 1
    assert OutboundMessage.objects.filter(purpose="verification").count() == 1
