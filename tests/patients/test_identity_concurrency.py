"""Two connections creating the same new patient at the same moment end with one patient (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections, transaction

from patients.models import Patient, PatientIdentifier
from patients.services import identity
from patients.services.identity import IdentifierInput, PatientDemographics, patient_match_or_create
from tests.factories import national_id

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BORN = dt.date(1980, 5, 17)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("two writers racing on a unique index need PostgreSQL's concurrent connections")


@pytest.fixture
def both_miss(monkeypatch):
    """Hold each writer after its lookup found nobody until the other has looked too, so both try to create."""
    barrier = threading.Barrier(2, timeout=10)
    original = identity._patient_create
    waited = threading.local()

    def create(*args, **kwargs):
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(identity, "_patient_create", create)


def _race(demographics: PatientDemographics) -> list:
    results: list = [None, None]

    def run(index: int) -> None:
        try:
            with transaction.atomic():
                outcome = patient_match_or_create(demographics=demographics, source="hl7", system=f"sender{index}")
            results[index] = (outcome.patient.pk, outcome.created, outcome.matched_by)
        except Exception as error:  # reported to the test, not swallowed
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.parametrize(
    ("demographics", "matched_by"),
    [
        (PatientDemographics(name="张伟", identifiers=[IdentifierInput("visit_card", "C1", "HIS1")]), "identifier"),
        (PatientDemographics(name="张伟", national_id=national_id("110105", BORN, 13)), "national_id"),
        (PatientDemographics(name="张伟", mrn="HIS-000123"), "mrn"),
    ],
    ids=["identifier", "national_id", "mrn"],
)
def test_two_writers_creating_the_same_patient_make_one(both_miss, demographics, matched_by):
    results = _race(demographics)

    [patient] = Patient.objects.all()
    assert sorted(results, key=lambda result: not result[1]) == [
        (patient.pk, True, "new"),
        (patient.pk, False, matched_by),
    ]
    assert PatientIdentifier.objects.count() == len(demographics.identifiers)
