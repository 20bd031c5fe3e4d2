"""NK1 contacts: matched to the stored ones by name, changed where they differ, added where they are new."""

from __future__ import annotations

import pytest

from integrations.hl7v2.pipeline import hl7_receive, hl7_reprocess
from integrations.models import InboundMessage
from patients.models import ContactPerson, Patient
from tests.factories import UserFactory
from tests.integrations.hl7v2.messages import adt, pid, pv1

pytestmark = pytest.mark.django_db

FATHER = "NK1|1|王^大明|FTH^父亲^HL70063||^PRN^PH^^^^13900139000"
MOTHER = "NK1|2|李^秀英|MTH^母亲^HL70063||^PRN^PH^^^^13900139001"


def _receive(control_id: str, *segments: str, trigger: str = "A08", visit: bool = True) -> str:
    body = (f"EVN|{trigger}|20250302083000", pid(), *segments, *((pv1(),) if visit else ()))
    ack = hl7_receive(adt(control_id, trigger=trigger, segments=body), transport="mllp")
    return ack.split(b"\r")[1].split(b"|")[1].decode()


def _contacts() -> list[tuple]:
    return list(
        ContactPerson.objects.order_by("id").values_list("name", "relationship", "phone", "is_emergency_contact")
    )


def test_an_update_changes_a_sent_contact_adds_a_new_one_and_leaves_an_unchanged_one_untouched():
    # given a patient admitted with his father as contact
    assert _receive("MSG0001", FATHER, trigger="A01") == "AA"
    father = ContactPerson.objects.get()

    # when an update sends the father unchanged and the mother, then the mother's new phone
    assert _receive("MSG0002", FATHER, MOTHER) == "AA"
    assert _receive("MSG0003", FATHER, MOTHER.replace("13900139001", "13700137000")) == "AA"

    # then the father's row is the same row, not written again; the mother's was added, then changed
    assert _contacts() == [
        ("王大明", "parent", "+8613900139000", False),
        ("李秀英", "parent", "+8613700137000", False),
    ]
    stored = ContactPerson.objects.get(pk=father.pk)
    assert (stored.updated_at, stored.uuid) == (father.updated_at, father.uuid)
    assert ContactPerson.objects.get(name="李秀英").patient == Patient.objects.get()


def test_a_name_sent_twice_is_one_contact_with_the_values_sent_last():
    emergency = "NK1|2|王^大明|FTH^父亲^HL70063||^PRN^PH^^^^13600136000||EC"

    assert _receive("MSG0001", FATHER, emergency, trigger="A01") == "AA"
    assert _contacts() == [("王大明", "parent", "+8613600136000", True)]

    assert _receive("MSG0002", emergency, FATHER) == "AA"
    assert _contacts() == [("王大明", "parent", "+8613900139000", False)]


def test_of_two_stored_contacts_with_one_name_the_latest_takes_what_is_sent():
    # given a patient whose father was entered twice (once by hand, say)
    assert _receive("MSG0001", FATHER, trigger="A01") == "AA"
    patient = Patient.objects.get()
    ContactPerson.objects.create(patient=patient, name="王大明", relationship="other", phone="13500135000")

    assert _receive("MSG0002", FATHER.replace("13900139000", "13800138111")) == "AA"

    assert _contacts() == [
        ("王大明", "parent", "+8613900139000", False),
        ("王大明", "parent", "+8613800138111", False),
    ]


def test_contacts_are_written_by_a_message_without_a_visit():
    assert _receive("MSG0001", FATHER, trigger="A28", visit=False) == "AA"
    assert _receive("MSG0002", FATHER.replace("FTH^父亲", "SPO^配偶"), MOTHER, trigger="A31", visit=False) == "AA"

    assert _contacts() == [("王大明", "spouse", "+8613900139000", False), ("李秀英", "parent", "+8613900139001", False)]


def test_a_person_reprocessing_a_message_writes_its_contacts_row_by_row():
    # given an update refused (the patient was unknown) and the patient admitted since
    assert _receive("MSG0001", trigger="A01") == "AA"
    refused = InboundMessage.objects.create(
        protocol="hl7v2",
        transport="mllp",
        raw=adt("MSG0002", trigger="A08", segments=("EVN|A08|20250302083000", pid(), MOTHER, pv1())),
        sender="HIS^TCMH",
        control_id="MSG0002",
        message_type="ADT^A08",
        status="failed",
    )

    hl7_reprocess(message=refused, actor=UserFactory())

    refused.refresh_from_db()
    assert refused.status == "applied"
    assert _contacts() == [("李秀英", "parent", "+8613900139001", False)]
