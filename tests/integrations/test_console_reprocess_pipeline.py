"""Reprocessing through the real HL7 pipeline: a message refused for a code its source did not map, the profile
fixed in the console, the message reprocessed and applied, and a second reprocess changing nothing."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("integrations.hl7v2.pipeline", reason="the HL7 pipeline is not installed")

from hcrm.models import AuditEntry  # noqa: E402
from integrations.models import InboundMessage  # noqa: E402
from patients.models import Patient  # noqa: E402
from tests.integrations.console_fixtures import inbound, source  # noqa: E402

pytestmark = pytest.mark.django_db

UNKNOWN_SEX = (
    "MSH|^~\\&|HIS|ZYY|HCRM|ZYY|20250301083000||ADT^A04|SX1|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|A04|20250301083000\r"
    "PID|1||M0815^^^ZYY^MR||李^四||19600101|X\r"
    "PV1|1|O\r"
).encode()


@pytest.fixture
def refused(db):
    his = source("HIS", "ZYY", mrn_assigner="ZYY")
    return his, inbound(
        profile=his,
        raw=UNKNOWN_SEX,
        control_id="SX1",
        message_type="ADT^A04",
        version="2.5",
        status="failed",
        error_code="103",
        error_location="PID^1^8",
        error="PID-8: sex code X is not in this source's sex codes.",
        patient_identifiers="M0815",
    )


def test_a_failed_message_is_applied_after_its_source_profile_is_fixed(client, staff, refused):
    his, message = refused
    client.force_login(staff["administrator"])

    still_failing = client.post(f"/integrations/messages/{message.uuid}/reprocess/", follow=True)
    message.refresh_from_db()
    assert message.status == "failed"
    assert "PID-8" in still_failing.content.decode()
    assert Patient.objects.count() == 0

    form = {
        "name": his.name, "protocol": "hl7v2", "sending_application": "HIS", "sending_facility": "ZYY",
        "is_active": "on", "default_charset": "utf-8", "mrn_assigner": "ZYY",
        "identifier_types": json.dumps(his.identifier_types), "department_codes": "{}",
        "sex_codes": json.dumps({**his.sex_codes, "X": "unknown"}),
        "diagnosis_systems": json.dumps(his.diagnosis_systems), "note": "",
    }  # fmt: skip
    assert client.post(f"/integrations/sources/{his.uuid}/", form).status_code == 302
    applied = client.post(f"/integrations/messages/{message.uuid}/reprocess/", follow=True)

    message.refresh_from_db()
    assert "The message was reprocessed and applied." in applied.content.decode()
    assert message.status == "applied"
    patient = Patient.objects.get()
    assert (patient.name, patient.sex, message.patient_id) == ("李四", "unknown", patient.pk)
    reprocessed = AuditEntry.objects.filter(object_pk=str(message.pk), additional_data__action="hl7_reprocess")
    assert [(entry.actor, entry.additional_data["status"]) for entry in reprocessed.order_by("pk")] == [
        (staff["administrator"], "failed"),
        (staff["administrator"], "applied"),
    ]


def test_reprocess_all_applies_each_waiting_message_once(client, staff, refused):
    his, message = refused
    his.sex_codes = {**his.sex_codes, "X": "unknown"}
    his.save()
    client.force_login(staff["administrator"])

    first = client.post(f"/integrations/sources/{his.uuid}/reprocess/", follow=True)
    second = client.post(f"/integrations/sources/{his.uuid}/reprocess/", follow=True)

    assert "1 messages reprocessed, 1 applied." in first.content.decode()
    assert "No failed or rejected HL7 message of this source is waiting." in second.content.decode()
    assert InboundMessage.objects.get(pk=message.pk).status == "applied"
    assert Patient.objects.count() == 1
