"""The facade as a real FHIR client library sees it: fhirclient against a live server."""

from __future__ import annotations

import pytest
from fhirclient import client
from fhirclient.models.bundle import Bundle
from fhirclient.models.humanname import HumanName
from fhirclient.models.identifier import Identifier
from fhirclient.models.patient import Patient as FhirPatient

from hcrm.models import IntegrationKey
from patients.models import Patient
from tests.appointments.conftest import booking_templates  # noqa: F401  (autouse: the booking message templates)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def smart(live_server):
    _key, secret = IntegrationKey.objects.create_key(
        name="EMR", scopes=["fhir.read", "fhir.write"], source_system="EMR"
    )
    smart = client.FHIRClient(settings={"app_id": "hcrm-tests", "api_base": f"{live_server.url}/fhir/R4/"})
    smart.server.session.headers["Authorization"] = f"Api-Key {secret}"
    yield smart
    # A kept-alive connection would hold the live server's thread, and its database session, open.
    smart.server.session.close()


def test_the_client_reads_the_capability_statement(smart):
    smart.prepare()

    statement = smart.server.capabilityStatement
    assert statement.fhirVersion == "4.0.1"
    assert [resource.type for resource in statement.rest[0].resource][:4] == [
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
    ]


def test_create_search_and_read_through_the_client(smart):
    new = FhirPatient()
    new.name = [HumanName({"use": "official", "family": "王", "given": ["小明"]})]
    new.gender = "male"
    new.identifier = [Identifier({"system": "urn:oid:1.2.156.112604.1.2.1", "value": "MR9"})]
    new.birthDate = None

    created = new.create(smart.server)

    patient = Patient.objects.get()
    assert created["id"] == str(patient.uuid)
    found = list(
        FhirPatient.where(struct={"identifier": "urn:oid:1.2.156.112604.1.2.1|MR9"}).perform_resources_iter(
            smart.server
        )
    )
    assert [resource.id for resource in found] == [str(patient.uuid)]
    read = FhirPatient.read(str(patient.uuid), smart.server)
    assert (read.name[0].text, read.gender, read.active) == ("王小明", "male", True)


def test_paging_through_the_client_follows_next_links(smart):
    for index in range(3):
        resource = FhirPatient(
            {"name": [{"text": f"患者{index}"}], "identifier": [{"system": "urn:x", "value": f"P{index}"}]}
        )
        resource.create(smart.server)

    bundle = next(FhirPatient.where(struct={"_count": "2", "_sort": "_lastUpdated"}).perform_iter(smart.server))
    names = [entry.resource.name[0].text for entry in bundle.entry]
    next_url = next(link.url for link in bundle.link if link.relation == "next")
    second = Bundle(smart.server.request_json(next_url))
    names += [entry.resource.name[0].text for entry in second.entry]

    assert names == ["患者0", "患者1", "患者2"]


def test_schedules_slots_and_appointments_through_the_client(smart, staff, internal_medicine, patient):
    import datetime as dt

    from django.utils import timezone
    from fhirclient.models.appointment import Appointment as FhirAppointment
    from fhirclient.models.schedule import Schedule as FhirSchedule
    from fhirclient.models.slot import Slot as FhirSlot

    from appointments.services import BookingDoor, appointment_book
    from tests.appointments.factories import session

    day = timezone.localdate() + dt.timedelta(days=3)
    clinic = session(doctor=staff["doctor"], department=internal_medicine, date=day, slots=3, online=1)
    first = clinic.slots.first()
    booked = appointment_book(patient=patient, slot=first, door=BookingDoor(channel="online"))

    schedule = FhirSchedule.read(str(clinic.uuid), smart.server)
    free = list(
        FhirSlot.where(struct={"schedule": f"Schedule/{clinic.uuid}", "status": "free"}).perform_resources_iter(
            smart.server
        )
    )
    appointments = list(
        FhirAppointment.where(struct={"patient": f"Patient/{patient.uuid}"}).perform_resources_iter(smart.server)
    )

    assert (schedule.active, schedule.actor[0].reference) == (True, f"Practitioner/{staff['doctor'].uuid}")
    assert sorted(slot.id for slot in free) == sorted(str(slot.uuid) for slot in clinic.slots.exclude(pk=first.pk))
    assert [(a.id, a.status, a.identifier[0].value, a.slot[0].reference) for a in appointments] == [
        (str(booked.uuid), "booked", "1", f"Slot/{first.uuid}")
    ]
    assert appointments[0].start.isostring == timezone.localtime(first.starts_at).isoformat()
