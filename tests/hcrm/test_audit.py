"""The audit trail: writes through django-auditlog, reads through `audit_read`, both with who and from where."""

from __future__ import annotations

import pytest
from auditlog.context import set_extra_data
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from hcrm.audit import Event, audit_acting_as, audit_context, audit_read
from hcrm.models import AuditEntry
from patients import services
from patients.models import LabResult, Patient
from tests.factories import TagFactory

pytestmark = pytest.mark.django_db


def test_patient_write_is_filed_under_the_patient_with_the_actor(staff, internal_medicine):
    # when
    patient = services.patient_create(
        actor=staff["doctor"], data={"name": "王五", "mobile": "13812345678"}, departments=[internal_medicine]
    )

    # then
    entry = AuditEntry.objects.get(content_type=ContentType.objects.get_for_model(Patient))
    assert (entry.event, entry.actor, entry.patient_uuid) == ("create", staff["doctor"], patient.uuid)
    assert entry.changes["name"] == [None, "王五"]
    assert entry.changes["mobile"] == [None, "+8613812345678"]


def test_sensitive_fields_are_masked_in_the_stored_diff(staff, patient):
    # when
    services.patient_update(
        actor=staff["administrator"], patient=patient, data={"address_detail": "和平里1号", "occupation": "教师"}
    )

    # then the trail says the address changed, not what to
    entry = AuditEntry.objects.filter(event=Event.UPDATE).get()
    assert entry.changes == {"address_detail": ["[masked]", "[masked]"], "occupation": ["", "教师"]}
    assert "和平里" not in str(entry.changes)
    assert entry.actor == staff["administrator"]


def test_a_clinical_record_is_filed_under_its_patient(staff, patient):
    # when
    result = services.record_create(
        actor=staff["nurse"],
        model=LabResult,
        patient=patient,
        data={"code": "2345-7", "name": "葡萄糖", "value": "5.1", "observed_at": timezone.now()},
    )

    # then
    entry = AuditEntry.objects.get(content_type=ContentType.objects.get_for_model(LabResult), object_pk=str(result.pk))
    assert (entry.patient_uuid, entry.actor) == (patient.uuid, staff["nurse"])


def test_tag_changes_are_filed_under_the_patient(staff, patient):
    # given (bug: many-to-many changes were logged without the patient or an event)
    tag = TagFactory(name="高血压")

    # when
    services.patient_tags_set(actor=staff["doctor"], patient=patient, tags=[tag])

    # then
    entry = AuditEntry.objects.get(changes__tags__operation="add")
    assert (entry.event, entry.patient_uuid, entry.actor) == ("update", patient.uuid, staff["doctor"])
    assert entry.changes["tags"]["objects"] == ["高血压"]


def test_audit_read_without_a_record_stores_the_details(staff):
    # given a request context as the middleware sets it
    with set_extra_data(context_data={"actor": staff["agent"], "remote_addr": "10.1.2.3", "client": "console"}):
        # when
        entry = audit_read(event=Event.SEARCH, details={"query": "zhs"})

    # then
    entry.refresh_from_db()
    assert (entry.event, entry.actor, entry.remote_addr, entry.client) == (
        "search",
        staff["agent"],
        "10.1.2.3",
        "console",
    )
    assert entry.additional_data == {"query": "zhs"}
    assert (entry.object_pk, entry.patient_uuid) == ("", None)
    assert entry.content_type == ContentType.objects.get_for_model(AuditEntry)


def test_audit_read_of_a_patient_names_the_patient_and_the_reason(staff, patient):
    with set_extra_data(context_data={"actor": staff["doctor"], "remote_addr": "10.1.2.3"}):
        entry = audit_read(event=Event.REVEAL, instance=patient, reason="急诊抢救")

    entry.refresh_from_db()
    assert (entry.event, entry.patient_uuid, entry.reason, entry.object_repr) == (
        "reveal",
        patient.uuid,
        "急诊抢救",
        f"张三 ({patient.mrn})",
    )
    assert entry.action == AuditEntry.Action.ACCESS


def test_acting_as_attributes_writes_and_keeps_the_request_address(staff, patient):
    # given a request by one user
    outer = {"actor": staff["agent"], "remote_addr": "10.9.9.9", "client": "console"}
    with set_extra_data(context_data=outer):
        # when a service acts for another
        with audit_acting_as(staff["doctor"]):
            services.patient_update(actor=None, patient=patient, data={"occupation": "教师"})
        after = audit_context()

    # then the write is the doctor's, from the request's address, and the request context is back
    entry = AuditEntry.objects.get(event=Event.UPDATE)
    assert (entry.actor, entry.remote_addr, entry.client) == (staff["doctor"], "10.9.9.9", "console")
    assert after["actor"] == staff["agent"]


def test_acting_as_a_system_names_it_as_the_client(patient):
    with audit_acting_as("hl7:HIS"):
        services.patient_update(actor=None, patient=patient, data={"occupation": "教师"})

    entry = AuditEntry.objects.get(event=Event.UPDATE)
    assert (entry.actor, entry.client) == (None, "hl7:HIS")


def test_console_requests_record_address_user_agent_and_client(client, staff, patient):
    # given
    client.force_login(staff["doctor"])

    # when
    client.get(f"/patients/{patient.uuid}/", HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="192.168.7.8")

    # then
    entry = AuditEntry.objects.get(event=Event.VIEW)
    assert (entry.actor, entry.remote_addr, entry.user_agent, entry.client) == (
        staff["doctor"],
        "192.168.7.8",
        "Firefox/140",
        "console",
    )


def test_api_requests_record_the_token_holder_as_actor(api, staff, patient):
    api.as_user(staff["doctor"]).get(f"/api/v1/patients/{patient.uuid}/", REMOTE_ADDR="192.168.7.9")

    entry = AuditEntry.objects.get(event=Event.VIEW)
    assert (entry.actor, entry.remote_addr, entry.client, entry.patient_uuid) == (
        staff["doctor"],
        "192.168.7.9",
        "api",
        patient.uuid,
    )


def test_sign_in_sign_out_and_failed_sign_in_are_recorded(client, staff):
    # when
    client.post("/login/", {"username": "doctor", "password": "wrong-password"})
    client.post("/login/", {"username": "doctor", "password": "correct-horse-battery"})
    client.post("/logout/")

    # then
    events = list(AuditEntry.objects.order_by("id").values_list("event", "actor__username"))
    assert events == [("login_failed", None), ("login", "doctor"), ("logout", "doctor")]
    failed = AuditEntry.objects.get(event=Event.LOGIN_FAILED)
    assert failed.additional_data == {"username": "doctor"}


def test_an_acting_context_open_in_one_thread_does_not_break_audit_writes_in_another():
    # django-auditlog connects its receivers globally; each one reads the context of the thread
    # that saves. A thread that left an acting block must still carry a context they can read.
    import threading

    from django.db.models.signals import pre_save

    errors = []
    inside = threading.Event()
    leave = threading.Event()

    def hold_an_acting_context():
        with audit_acting_as("hl7:HIS"):
            inside.set()
            leave.wait(5)

    def save_after_leaving_an_acting_block():
        try:
            with audit_acting_as("fhir:EMR"):
                pass
            pre_save.send(sender=AuditEntry, instance=AuditEntry())
        except Exception as error:  # noqa: BLE001 - the assertion below shows what went wrong
            errors.append(error)

    holder = threading.Thread(target=hold_an_acting_context)
    holder.start()
    inside.wait(5)
    saver = threading.Thread(target=save_after_leaving_an_acting_block)
    saver.start()
    saver.join(5)
    leave.set()
    holder.join(5)

    assert errors == []


def test_acting_again_as_the_same_system_keeps_the_context(patient):
    # given a block acting as a sending system
    with audit_acting_as("hl7:HIS"):
        outer = audit_context()
        # when a service inside acts as the same system (a label made afresh)
        with audit_acting_as(f"hl7:{'HIS'}"):
            inner = audit_context()
            services.patient_update(actor=None, patient=patient, data={"occupation": "教师"})

    # then the context is not replaced, and the write is still the system's
    assert inner is outer
    entry = AuditEntry.objects.get(event=Event.UPDATE)
    assert (entry.actor, entry.client) == (None, "hl7:HIS")


def test_acting_as_a_person_inside_a_system_block_attributes_the_write_to_the_person(staff, patient):
    with audit_acting_as("hl7:HIS"):
        outer = audit_context()
        with audit_acting_as(staff["doctor"]):
            inner = audit_context()
            services.patient_update(actor=None, patient=patient, data={"occupation": "教师"})

    assert inner is not outer
    entry = AuditEntry.objects.get(event=Event.UPDATE)
    assert entry.actor == staff["doctor"]
