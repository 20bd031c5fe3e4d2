"""The pipeline end to end on messages a Chinese HIS sends: charsets, redelivery, all-or-nothing, reprocess, events."""

from __future__ import annotations

import datetime as dt

import hl7
import pytest
from django.conf import settings
from django.db import DataError, connection

from appointments.models import HisAppointment
from hcrm.models import AuditEntry
from integrations.hl7v2.pipeline import hl7_receive, hl7_receive_detailed, hl7_reprocess
from integrations.models import InboundMessage, SourceProfile
from patients.models import Diagnosis, Encounter, Patient, PatientDepartment
from patients.models.identity import PatientMerge
from tests.factories import DepartmentFactory, UserFactory, national_id
from tests.integrations.hl7v2.messages import adt, message, pid, pv1

pytestmark = pytest.mark.django_db


def _ack(raw: bytes, codec: str = "utf-8") -> hl7.Message:
    return hl7.parse(raw.decode(codec))


def test_admit_creates_the_patient_the_visit_and_links_the_department():
    department = DepartmentFactory(code="NK", name="内科")
    SourceProfile.objects.create(
        sending_application="HIS", sending_facility="TCMH", name="HIS", department_codes={"0301": "NK"}
    )

    ack = _ack(hl7_receive(adt(), transport="mllp"))

    assert str(ack.segment("MSA")(1)) == "AA"
    assert str(ack.segment("MSA")(2)) == "MSG0001"
    patient = Patient.objects.get()
    assert (patient.name, patient.sex, patient.birth_date, patient.mobile) == (
        "王小明",
        "male",
        dt.date(1980, 1, 2),
        "+8613800138000",
    )
    assert (patient.province, patient.city, patient.address_detail, patient.postal_code) == (
        "浙江省",
        "杭州市",
        "人民路1号",
        "310000",
    )
    encounter = Encounter.objects.get()
    assert (encounter.external_id, encounter.kind, encounter.status, encounter.department, encounter.doctor_name) == (
        "V0001",
        "inpatient",
        "in_progress",
        department,
        "李时珍",
    )
    assert PatientDepartment.objects.filter(patient=patient, department=department).exists()
    stored = InboundMessage.objects.get()
    assert (stored.status, stored.sender, stored.message_type, stored.patient, stored.attempts) == (
        "applied",
        "HIS^TCMH",
        "ADT^A01",
        patient,
        1,
    )
    assert stored.patient_identifiers == "H0001"


def test_ack_swaps_sender_and_receiver_and_uses_the_inbound_version():
    ack = _ack(hl7_receive(adt(version="2.4"), transport="mllp"))

    msh = ack.segment("MSH")
    assert [str(msh(3)), str(msh(4)), str(msh(5)), str(msh(6))] == ["HCRM", "TCMH", "HIS", "TCMH"]
    assert str(msh(9)) == "ACK^A01^ACK"
    assert str(msh(10)) != "MSG0001"
    assert str(msh(12)) == "2.4"
    assert str(msh(18)) == "UNICODE UTF-8"


def test_gb18030_message_is_decoded_by_msh18_and_acknowledged_in_gb18030():
    raw = message("EVN|A04|20250301083000", pid(name="欧阳^亅娜", sex="2"), trigger="ADT^A04", charset="GB18030")
    # 亅 in GB18030 ends with 0x7C, the field separator: decoding must come before splitting.
    assert "亅".encode("gb18030") == b"\x81|"

    (result,) = hl7_receive_detailed(raw.encode("gb18030"), transport="mllp")

    assert result.ack_code == "AA"
    assert Patient.objects.get().name == "欧阳亅娜"
    assert str(_ack(result.ack, "gb18030").segment("MSH")(18)) == "GB18030"


def test_empty_msh18_falls_back_to_the_source_default_charset():
    SourceProfile.objects.create(
        sending_application="HIS", sending_facility="TCMH", name="HIS", default_charset="gb18030"
    )
    raw = message("EVN|A04|20250301083000", pid(name="张^三"), trigger="ADT^A04", charset="")

    (result,) = hl7_receive_detailed(raw.encode("gbk"), transport="file")

    assert result.ack_code == "AA"
    assert Patient.objects.get().name == "张三"


def test_bytes_that_are_not_the_declared_charset_are_rejected_clearly():
    raw = message("EVN|A04|20250301083000", pid(name="张^三"), trigger="ADT^A04", charset="UNICODE UTF-8")

    (result,) = hl7_receive_detailed(raw.encode("gb18030"), transport="file")

    err = _ack(result.ack, "latin-1").segment("ERR")
    assert (result.status, result.ack_code, str(err(2)), str(err(3)(1)(1))) == ("rejected", "AR", "MSH^1^18", "102")
    assert str(err(8)).startswith("The message is not valid UNICODE UTF-8 text (byte ")
    assert Patient.objects.count() == 0
    assert InboundMessage.objects.get().status == "rejected"


@pytest.mark.parametrize(
    ("charset", "version", "location", "code"),
    [("UNICODE UTF-16", "2.5", "MSH^1^18", "103"), ("UNICODE UTF-8", "2.2", "MSH^1^12", "203")],
)
def test_unsupported_charset_or_version_is_rejected(charset, version, location, code):
    (result,) = hl7_receive_detailed(adt(charset=charset, version=version), transport="file")

    err = _ack(result.ack).segment("ERR")
    assert (result.ack_code, str(err(2)), str(err(3)(1)(1))) == ("AR", location, code)


def test_redelivery_is_acknowledged_and_not_applied_again():
    first = hl7_receive_detailed(adt(), transport="mllp")[0]
    patient = Patient.objects.get()
    audit_before = AuditEntry.objects.count()

    second = hl7_receive_detailed(adt(), transport="mllp")[0]

    assert (first.status, second.status, second.ack_code) == ("applied", "duplicate", "AA")
    assert AuditEntry.objects.count() == audit_before
    original, copy = InboundMessage.objects.order_by("id")
    assert (copy.status, copy.duplicate_of, original.attempts) == ("duplicate", original, 1)
    assert Patient.objects.get() == patient


def test_a_failure_mid_message_leaves_nothing_half_applied():
    bad_dg1 = "DG1|1||I10^原发性高血压^I10||notadate|A"
    raw = adt(segments=("EVN|A01|20250301083000", pid(), pv1(), bad_dg1))

    (result,) = hl7_receive_detailed(raw, transport="mllp")

    err = _ack(result.ack).segment("ERR")
    assert (result.status, result.ack_code, str(err(2)), str(err(8))) == (
        "failed",
        "AE",
        "DG1^1^5",
        "DG1-5: notadate is not a valid date/time.",
    )
    assert (Patient.objects.count(), Encounter.objects.count(), Diagnosis.objects.count()) == (0, 0, 0)
    stored = InboundMessage.objects.get()
    assert (stored.status, stored.error_code, stored.error_location) == ("failed", "102", "DG1^1^5")


def test_reprocess_after_fixing_the_profile_applies_once():
    operator = UserFactory(username="it")
    (result,) = hl7_receive_detailed(adt(segments=("EVN|A01|20250301083000", pid(sex="X"), pv1())), transport="mllp")
    assert (result.status, Patient.objects.count()) == ("failed", 0)
    stored = InboundMessage.objects.get()
    assert stored.error == "PID-8: sex code X is not in this source's sex codes."

    profile = SourceProfile.objects.get(sending_application="HIS", sending_facility="TCMH")
    profile.sex_codes = {**profile.sex_codes, "X": "other"}
    profile.save()
    reprocessed = hl7_reprocess(message=stored, actor=operator)

    assert (reprocessed.status, reprocessed.attempts, reprocessed.error) == ("applied", 2, "")
    assert Patient.objects.get().sex == "other"
    entry = AuditEntry.objects.filter(additional_data__action="hl7_reprocess").get()
    assert (entry.actor, entry.additional_data["status_before"]) == (operator, "failed")

    again = hl7_reprocess(message=reprocessed, actor=operator)
    assert (again.status, again.attempts, Patient.objects.count(), Encounter.objects.count()) == ("applied", 2, 1, 1)


def test_redelivery_of_a_failed_message_tries_it_again():
    hl7_receive_detailed(adt(segments=("EVN|A01|20250301083000", pid(sex="X"), pv1())), transport="mllp")
    profile = SourceProfile.objects.get(sending_application="HIS", sending_facility="TCMH")
    profile.sex_codes = {**profile.sex_codes, "X": "other"}
    profile.save()

    (result,) = hl7_receive_detailed(adt(segments=("EVN|A01|20250301083000", pid(sex="X"), pv1())), transport="mllp")

    assert result.ack_code == "AA"
    assert sorted(InboundMessage.objects.values_list("status", flat=True)) == ["applied", "duplicate"]
    assert Patient.objects.count() == 1


def test_a_message_the_database_refuses_is_kept_failed_with_nothing_applied_and_a_resend_applies_it(monkeypatch):
    from integrations.hl7v2 import pipeline

    applying = pipeline._apply

    def refused(*args, **kwargs):
        applying(*args, **kwargs)  # the writes happen, then the database refuses the transaction
        raise DataError("value too long for type character varying(20)")

    monkeypatch.setattr(pipeline, "_apply", refused)
    raw = adt(segments=("EVN|A01|20250301083000", pid(), pv1()))

    (result,) = hl7_receive_detailed(raw, transport="mllp")

    err = _ack(result.ack).segment("ERR")
    assert (result.status, result.ack_code, str(err(3)).split("^")[0]) == ("failed", "AE", "207")
    stored = InboundMessage.objects.get()
    assert (stored.status, stored.error_code, bytes(stored.raw)) == ("failed", "207", raw.rstrip(b"\r"))
    assert "DataError" in stored.error and "character varying" not in stored.error
    assert (Patient.objects.count(), Encounter.objects.count()) == (0, 0)

    monkeypatch.setattr(pipeline, "_apply", applying)
    (again,) = hl7_receive_detailed(raw, transport="mllp")

    assert again.ack_code == "AA"
    assert sorted(InboundMessage.objects.values_list("status", flat=True)) == ["applied", "duplicate"]
    assert (Patient.objects.count(), Encounter.objects.count()) == (1, 1)


NK1 = "NK1|1|王^大明|FTH^父亲^HL70063||^PRN^PH^^^^13900139000"
DG1 = "DG1|1||I10^原发性高血压^I10||20250301083000|A"


def _with_department():
    DepartmentFactory(code="NK", name="内科")
    SourceProfile.objects.create(
        sending_application="HIS", sending_facility="TCMH", name="HIS", department_codes={"0301": "NK"}
    )


def test_update_for_a_known_patient_costs_few_queries(django_assert_num_queries):
    _with_department()
    segments = ("EVN|A08|20250302083000", pid(), NK1, pv1(), DG1)
    hl7_receive(adt("MSG0001", segments=("EVN|A01|20250301083000", pid(), NK1, pv1(), DG1)), transport="mllp")
    hl7_receive(adt("MSG0002", trigger="A08", segments=segments), transport="mllp")  # warms the caches

    # One transaction (a savepoint here): match by identifier (nothing changed: no write), upsert the
    # visit (with its department link, and on PostgreSQL the contacts, unread) and the diagnoses (one
    # statement each), store the raw message as applied with its one audit entry (one statement).
    # PostgreSQL adds the per-patient advisory lock; SQLite reads the contacts, links the department
    # and inserts the entry on their own.
    with django_assert_num_queries(7 if connection.vendor == "postgresql" else 9):
        result = hl7_receive_detailed(adt("MSG0003", trigger="A08", segments=segments), transport="mllp")[0]

    assert result.status == "applied"
    assert Diagnosis.objects.get().code == "I10"
    assert Encounter.objects.get().department.code == "NK"


def test_an_update_that_changes_the_patient_writes_it_with_the_visit(django_assert_num_queries):
    _with_department()
    hl7_receive(adt("MSG0001", segments=("EVN|A01|20250301083000", pid(), NK1, pv1(), DG1)), transport="mllp")
    moved = pid(phone="^PRN^CP^^^^^^^^^13700137000").replace("人民路1号", "延安路8号")
    segments = ("EVN|A08|20250302083000", moved, NK1.replace("13900139000", "13600136000"), pv1(), DG1)

    # As an update that changes nothing: on PostgreSQL the patient's UPDATE and the contact's go
    # with the visit's upsert; SQLite writes each on its own.
    with django_assert_num_queries(7 if connection.vendor == "postgresql" else 11):
        result = hl7_receive_detailed(adt("MSG0002", trigger="A08", segments=segments), transport="mllp")[0]

    assert result.status == "applied"
    patient = Patient.objects.get()
    assert (patient.mobile, patient.address_detail) == ("+8613700137000", "延安路8号")
    assert list(patient.contact_persons.values_list("name", "phone")) == [("王大明", "+8613600136000")]
    assert patient.updated_at > patient.created_at


def test_admission_of_a_new_patient_costs_few_queries(django_assert_num_queries):
    _with_department()
    hl7_receive(adt("MSG0001"), transport="mllp")  # warms the caches
    segments = ("EVN|A01|20250301083000", pid(mrn="H0002", name="李^四"), NK1, pv1("V0002"), DG1)

    # Match (nobody), register the patient with its MRN and identifiers in one statement that also
    # reads the likely duplicates' candidates (PostgreSQL), add the contact with the visit, its
    # department link and the diagnosis, store the raw message with its audit entry, inside one
    # transaction (a savepoint here).
    expected = 8 if connection.vendor == "postgresql" else 15
    with django_assert_num_queries(expected):
        result = hl7_receive_detailed(adt("MSG0002", segments=segments), transport="mllp")[0]

    assert result.status == "applied"
    patient = Patient.objects.get(identifiers__value="H0002")
    assert (patient.name, patient.mrn.startswith(settings.MRN_PREFIX)) == ("李四", True)
    assert patient.contact_persons.get().name == "王大明"
    assert Encounter.objects.get(external_id="V0002").patient == patient


def test_an_applied_message_leaves_one_audit_entry_naming_the_patient_and_the_message():
    DepartmentFactory(code="NK", name="内科")
    SourceProfile.objects.create(
        sending_application="HIS", sending_facility="TCMH", name="HIS", department_codes={"0301": "NK"}
    )
    dg1 = "DG1|1||I10^原发性高血压^I10||20250301083000|A"
    nk1 = "NK1|1|王^大明|FTH^父亲^HL70063||^PRN^PH^^^^13900139000"
    raw = adt(segments=("EVN|A01|20250301083000", pid(), nk1, pv1(), dg1))

    hl7_receive(raw, transport="mllp", peer="10.0.0.9:40001")

    patient, stored = Patient.objects.get(), InboundMessage.objects.get()
    (entry,) = AuditEntry.objects.all()
    assert (entry.event, entry.object_pk, entry.patient_uuid, entry.actor, entry.client) == (
        "create",
        str(patient.pk),
        patient.uuid,
        None,
        "his_import:HIS^TCMH",
    )
    assert entry.additional_data == {
        "hl7": {
            "message": str(stored.uuid),
            "control_id": "MSG0001",
            "message_type": "ADT^A01",
            "sender": "HIS^TCMH",
            "peer": "10.0.0.9:40001",
        }
    }

    hl7_receive(adt("MSG0002", trigger="A08", segments=("EVN|A08|20250302083000", pid(), pv1())), transport="mllp")

    update = AuditEntry.objects.exclude(pk=entry.pk).get()
    assert (update.event, update.patient_uuid, update.additional_data["hl7"]["control_id"]) == (
        "update",
        patient.uuid,
        "MSG0002",
    )


def test_reprocess_by_an_operator_audits_every_row_it_writes():
    operator = UserFactory(username="it")
    (result,) = hl7_receive_detailed(adt(segments=("EVN|A01|20250301083000", pid(sex="X"), pv1())), transport="mllp")
    assert (result.status, AuditEntry.objects.count()) == ("failed", 0)
    profile = SourceProfile.objects.get(sending_application="HIS", sending_facility="TCMH")
    profile.sex_codes = {**profile.sex_codes, "X": "other"}
    profile.save()

    hl7_reprocess(message=InboundMessage.objects.get(), actor=operator)

    written = sorted(AuditEntry.objects.filter(event="create").values_list("content_type__model", flat=True))
    assert written == ["encounter", "patient", "patientidentifier"]
    assert AuditEntry.objects.filter(additional_data__hl7__isnull=False).count() == 0


def test_discharge_transfer_and_cancellations_change_the_visit():
    DepartmentFactory(code="ZJ", name="针灸科")
    hl7_receive(adt("M1"), transport="mllp")

    hl7_receive(
        adt(
            "M2", trigger="A02", segments=("EVN|A02|20250303090000", pid(), pv1(department="ZJ", location="ZJBQ^12^3"))
        ),
        transport="mllp",
    )
    encounter = Encounter.objects.get()
    assert (encounter.department.code, encounter.ward, encounter.bed, encounter.status) == (
        "ZJ",
        "ZJBQ",
        "12-3",
        "in_progress",
    )

    hl7_receive(
        adt("M3", trigger="A03", segments=("EVN|A03|20250310100000", pid(), pv1(discharged="20250310100000"))),
        transport="mllp",
    )
    encounter.refresh_from_db()
    assert (encounter.status, encounter.ended_at) == ("finished", dt.datetime(2025, 3, 10, 2, 0, tzinfo=dt.UTC))

    hl7_receive(adt("M4", trigger="A13", segments=("EVN|A13|20250310110000", pid(), pv1())), transport="mllp")
    encounter.refresh_from_db()
    assert (encounter.status, encounter.ended_at) == ("in_progress", None)

    hl7_receive(adt("M5", trigger="A11", segments=("EVN|A11|20250310120000", pid(), pv1())), transport="mllp")
    encounter.refresh_from_db()
    assert encounter.status == "cancelled"
    assert Encounter.objects.count() == 1


def test_discharge_of_an_unknown_patient_is_an_application_error():
    raw = adt(trigger="A03", segments=("EVN|A03|20250310100000", pid(mrn="NOBODY"), pv1()))

    (result,) = hl7_receive_detailed(raw, transport="mllp")

    err = _ack(result.ack).segment("ERR")
    assert (result.ack_code, str(err(2)), str(err(3)(1)(1)), str(err(8))) == (
        "AE",
        "PID^1^3",
        "204",
        "No patient holds the identifiers in PID-3 (NOBODY).",
    )


def test_a40_merges_each_pair_and_can_be_undone():
    from patients.services.identity import patient_merge_undo

    for index, mrn in enumerate(("S1", "P1", "S2", "P2")):
        hl7_receive(
            adt(f"N{index}", segments=("EVN|A01|20250301083000", pid(mrn=mrn), pv1(visit=f"V{mrn}"))), transport="mllp"
        )
    merge = adt(
        "MERGE1",
        trigger="A40",
        segments=(
            "EVN|A40|20250305083000",
            pid(mrn="S1"),
            "MRG|P1^^^TCMH^MR",
            pid(mrn="S2"),
            "MRG|P2^^^TCMH^MR",
        ),
    )

    (result,) = hl7_receive_detailed(merge, transport="mllp")

    assert result.ack_code == "AA"
    survivor = Patient.objects.get(identifiers__value="S1")
    assert sorted(survivor.encounters.values_list("external_id", flat=True)) == ["VP1", "VS1"]
    assert Patient.objects.get(identifiers__value="S2").encounters.count() == 2
    assert PatientMerge.objects.count() == 2
    prior = Patient.objects.get(merged_into=survivor)

    patient_merge_undo(merge=PatientMerge.objects.get(prior=prior))
    assert sorted(survivor.encounters.values_list("external_id", flat=True)) == ["VS1"]
    prior.refresh_from_db()
    assert prior.merged_into is None


def test_siu_reschedule_and_cancel_update_the_mirrored_appointment():
    def siu(control_id: str, event: str, start: str) -> bytes:
        return message(
            "SCH||A100||||||||||||||||||||||||Booked",
            f"TQ1|1||||||{start}|",
            pid(),
            "AIP|1||D0012^李^时珍",
            control_id=control_id,
            trigger=f"SIU^{event}",
        ).encode("utf-8")

    hl7_receive(siu("S1", "S12", "20250401090000"), transport="mllp")
    hl7_receive(siu("S2", "S13", "20250402100000"), transport="mllp")
    appointment = HisAppointment.objects.get()
    assert (appointment.status, appointment.doctor_name, appointment.start) == (
        "booked",
        "李时珍",
        dt.datetime(2025, 4, 2, 2, 0, tzinfo=dt.UTC),
    )

    hl7_receive(siu("S3", "S15", "20250402100000"), transport="mllp")
    appointment.refresh_from_db()
    assert appointment.status == "cancelled"


def test_national_id_in_pid3_matches_the_same_person_across_senders():
    resident_id = national_id("330102", dt.date(1980, 1, 2), 11)
    hl7_receive(
        adt("A", segments=("EVN|A04|20250301083000", pid(mrn="H1", extra_ids=f"{resident_id}^^^CHN^NI"))),
        transport="mllp",
    )
    other = message(
        "EVN|A04|20250301083000",
        pid(mrn="E9", extra_ids=f"{resident_id}^^^CHN^NI"),
        control_id="B",
        trigger="ADT^A04",
        sender="EMR|TCMH",
    ).encode("utf-8")

    hl7_receive(other, transport="mllp")

    patient = Patient.objects.get()
    assert patient.national_id == resident_id
    assert set(patient.identifiers.values_list("value", flat=True)) == {"H1", "E9"}


def test_inactive_source_is_rejected():
    SourceProfile.objects.create(sending_application="HIS", sending_facility="TCMH", name="HIS", is_active=False)

    (result,) = hl7_receive_detailed(adt(), transport="mllp")

    assert (result.status, result.ack_code) == ("rejected", "AR")
    assert Patient.objects.count() == 0


def test_several_messages_in_one_payload_each_get_an_ack():
    payload = adt("M1") + b"\n\n" + adt("M2", trigger="A08", segments=("EVN|A08|20250302083000", pid(), pv1()))

    results = hl7_receive_detailed(b"\x0b" + payload + b"\x1c\r", transport="http")

    assert [(r.status, str(_ack(r.ack).segment("MSA")(2))) for r in results] == [("applied", "M1"), ("applied", "M2")]


def test_a_frame_holding_two_messages_is_stored_and_refused_whole():
    frame = adt("MSG0001") + adt("MSG0002", segments=("EVN|A01|20250301083000", pid("H0002", "李^四"), pv1("V0002")))

    ack = _ack(hl7_receive(frame, transport="mllp"))

    assert (str(ack.segment("MSA")(1)), str(ack.segment("MSA")(2))) == ("AR", "MSG0001")
    assert str(ack.segment("ERR")(3)(1)(1)) == "100"
    assert Patient.objects.count() == 0
    stored = InboundMessage.objects.get()
    assert (stored.status, stored.error_code, bytes(stored.raw)) == ("rejected", "100", frame)


def test_nul_characters_are_dropped_from_text_and_kept_in_the_raw_message():
    raw = adt().replace(b"HIS|", b"H\x00IS|", 1).replace("王小明".encode(), "王\x00小明".encode())
    refused = b"MSH|^~\\&|\x00|\x00\rPID|1"

    applied, rejected_ = hl7_receive_detailed(raw + b"\r" + refused, transport="file")

    assert (applied.ack_code, rejected_.ack_code) == ("AA", "AR")
    assert Patient.objects.get().name == "王小明"
    first, second = InboundMessage.objects.order_by("pk")
    assert (first.sender, bytes(first.raw)) == ("HIS^TCMH", raw.rstrip(b"\r"))
    assert second.status == "rejected"
