"""Every row written per inbound message keeps only the indexes a read uses, and each of those reads still finds one."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from hcrm.models import AuditEntry
from integrations.models import InboundMessage
from integrations.selectors import inbound_search
from patients.models import Patient, PatientIdentifier
from patients.selectors import patients_matching
from tests.factories import IdentifierFactory, PatientFactory

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="index names and plans are PostgreSQL's")


def _indexes(model) -> set[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {name for name, info in found.items() if info["index"] or info["unique"] or info["primary_key"]}


def _plan(queryset) -> str:
    """The plan PostgreSQL picks when it may not read the whole table: an index the query can use, or a Seq Scan."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        return queryset.explain()


@postgresql_only
def test_the_audit_trail_is_indexed_by_patient_actor_event_time_and_correlation_id_only():
    assert _indexes(AuditEntry) == {
        "hcrm_auditentry_pkey",
        "audit_patient_time",
        "audit_actor_time",
        "audit_event_time",
        "audit_cid",
        "hcrm_auditentry_timestamp_489599c6",
    }


@postgresql_only
def test_the_inbound_log_keeps_no_index_its_multi_column_ones_cover():
    indexes = _indexes(InboundMessage)

    assert "integrations_inboundmessage_source_id_af8c3114" not in indexes
    assert "integrations_inboundmessage_duplicate_of_id_38b20679" not in indexes
    assert {"inbound_source_received", "inbound_redeliveries", "inbound_control_id", "inbound_control_id_unique"} <= (
        indexes
    )


@postgresql_only
def test_the_archive_has_no_prefix_index_on_the_mrn_and_one_identifier_index():
    assert "patients_patient_mrn_44c0c6a8_like" not in _indexes(Patient)
    assert "patients_patient_merged_into_id_d17b7cc3" not in _indexes(Patient)
    assert _indexes(PatientIdentifier) == {
        "patients_patientidentifier_pkey",
        "patients_patientidentifier_uuid_key",
        "patients_patientidentifier_patient_id_25c95a72",
        "identifier_unique",
    }


@postgresql_only
@pytest.mark.parametrize(
    ("reads", "index"),
    [
        (
            lambda: AuditEntry.objects.filter(patient_uuid=uuid.uuid4()).order_by("-timestamp", "-id"),
            "audit_patient_time",
        ),
        (lambda: AuditEntry.objects.filter(actor_id=1).order_by("-timestamp", "-id"), "audit_actor_time"),
        (lambda: AuditEntry.objects.filter(event="reveal").order_by("-timestamp", "-id"), "audit_event_time"),
        (lambda: AuditEntry.objects.filter(cid="request-1"), "audit_cid"),
        (lambda: inbound_search(control_id="MSG00001"), "inbound_control_id"),
        (lambda: inbound_search(identifier="M00000042"), "inbound_identifier_tokens"),
        (lambda: InboundMessage.objects.filter(duplicate_of_id=1), "inbound_redeliveries"),
        (lambda: InboundMessage.objects.filter(source_id=1).order_by("received_at"), "inbound_source_received"),
        (lambda: Patient.objects.filter(mrn="M00000042"), "patient_mrn_unique"),
        (lambda: Patient.objects.filter(merged_into_id=1), "patient_merged_into"),
        (lambda: Patient.objects.filter(national_id="110105194912310021"), "patient_national_id"),
        (lambda: PatientIdentifier.objects.filter(value="C0000000001"), "identifier_unique"),
        (
            lambda: PatientIdentifier.objects.filter(kind="visit_card", assigner="HIS", value="C0000000001"),
            "identifier_unique",
        ),
    ],
)
def test_each_read_of_a_written_table_uses_an_index(reads, index):
    plan = _plan(reads())

    assert index in plan
    assert "Seq Scan" not in plan


@postgresql_only
def test_the_search_box_looks_up_an_mrn_and_a_card_number_through_indexes():
    plan = _plan(patients_matching(Patient.objects.all(), "M00000042"))

    assert "patient_mrn_unique" in plan
    assert "Seq Scan" not in plan


def test_a_taken_mrn_is_still_refused_by_the_database():
    PatientFactory(mrn="M00000042")

    with pytest.raises(IntegrityError), transaction.atomic():
        PatientFactory(mrn="M00000042")

    assert Patient.objects.filter(mrn="M00000042").count() == 1


def test_an_identifier_is_still_held_by_one_patient_only():
    held = IdentifierFactory(kind="visit_card", assigner="HIS", value="C0000000001")

    with pytest.raises(IntegrityError), transaction.atomic():
        IdentifierFactory(kind="visit_card", assigner="HIS", value="C0000000001")

    assert list(PatientIdentifier.objects.values_list("patient_id", flat=True)) == [held.patient_id]


def test_the_same_value_from_another_assigner_is_another_identifier():
    IdentifierFactory(kind="visit_card", assigner="HIS", value="C0000000001")
    IdentifierFactory(kind="visit_card", assigner="LIS", value="C0000000001")

    assert PatientIdentifier.objects.filter(value="C0000000001").count() == 2
