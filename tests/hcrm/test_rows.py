"""Fixed statements on the hot paths: prepared once per PostgreSQL connection, correct after a rollback."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from hcrm.rows import rows_load
from patients.models import Patient
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
