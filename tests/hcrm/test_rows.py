"""Fixed statements on the hot paths: prepared once per PostgreSQL connection, correct after a rollback."""

from __future__ import annotations

import contextlib

import pytest
from auditlog.context import disable_auditlog
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from hcrm.rows import row_insert_new, rows_insert_missing, rows_load
from patients.models import Consent, Patient
from tests.factories import PatientFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"),
]


def _prepared(sql_start: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{sql_start}%"])
        return cursor.fetchone()[0]


def test_a_statement_is_prepared_once_and_outlives_a_rolled_back_transaction():
    patient = PatientFactory()
    where = "t.id = %s AND t.mrn IS NOT NULL"
    with transaction.atomic():
        rows_load(Patient, where, [patient.pk])
        transaction.set_rollback(True)

    with CaptureQueriesContext(connection) as queries:
        again = rows_load(Patient, where, [patient.pk])
        rows_load(Patient, where, [patient.pk])

    assert [row.pk for row in again] == [patient.pk]
    assert [query["sql"].split(" ", 1)[0] for query in queries.captured_queries] == ["EXECUTE", "EXECUTE"]
    assert _prepared("t.mrn IS NOT NULL") == 1


@pytest.mark.parametrize("audited", [False, True])
def test_an_insert_of_a_key_already_stored_writes_nothing_and_leaves_the_transaction_usable(audited):
    stored = Consent.objects.create(patient=PatientFactory(), purpose="marketing", channel="sms", granted=True)
    again = Consent(patient=stored.patient, purpose="marketing", channel="sms", granted=False)
    other = Consent(patient=stored.patient, purpose="marketing", channel="email", granted=False)
    conflict = ["patient", "purpose", "channel"]

    # A row django-auditlog records goes through save() in a savepoint; any other is one INSERT … ON CONFLICT.
    recorded = contextlib.nullcontext() if audited else disable_auditlog()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries, recorded:
        written_again = row_insert_new(again, conflict=conflict)
        written_other = row_insert_new(other, conflict=conflict)

    assert (written_again, again.pk, written_other, other.pk is not None) == (False, None, True, True)
    assert bool([query for query in queries.captured_queries if "SAVEPOINT" in query["sql"]]) is audited
    assert dict(Consent.objects.filter(patient=stored.patient).values_list("channel", "granted")) == {
        "sms": True,
        "email": False,
    }


def test_rows_already_held_by_a_unique_constraint_are_passed_over_and_the_new_ones_counted():
    patient = PatientFactory()
    Consent.objects.create(patient=patient, purpose="marketing", channel="sms", granted=True)
    rows = [
        Consent(patient=patient, purpose="marketing", channel=channel, granted=False)
        for channel in ("sms", "email", "phone", "email")  # one stored, one twice
    ]

    with CaptureQueriesContext(connection) as queries:
        written = rows_insert_missing(rows, batch_size=3)

    assert written == 2
    assert len(queries.captured_queries) == 2  # one statement a batch, no counting before and after
    assert dict(Consent.objects.filter(patient=patient).values_list("channel", "granted")) == {
        "sms": True,
        "email": False,
        "phone": False,
    }


@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime")
def test_values_sent_as_they_are_equal_what_field_preparation_gives():
    import datetime as dt
    import uuid

    from django.utils import timezone

    from hcrm.models import AuditEntry
    from hcrm.rows import value_for_database
    from integrations.models import InboundMessage
    from patients.models import Diagnosis, Encounter

    samples = [
        None, "", "text", 0, 7, True, False, 1.5, dt.date(2025, 3, 1), timezone.now(), dt.datetime(2025, 3, 1, 8),
        uuid.uuid4(), b"raw", {"a": 1}, [1, 2], "2025-03-01",
    ]  # fmt: skip
    checked = 0
    for model in (Patient, InboundMessage, AuditEntry, Encounter, Diagnosis):
        for field in model._meta.concrete_fields:
            for value in samples:
                try:
                    expected = field.get_db_prep_save(value, connection)
                except (TypeError, ValueError, ValidationError):  # a value this field cannot take
                    continue
                got = value_for_database(field, value, connection)
                assert type(got) is type(expected), (field, value)
                if not hasattr(expected, "getquoted"):  # the driver's adapters compare by identity
                    assert got == expected, (field, value)
                checked += 1
    assert checked > 500
