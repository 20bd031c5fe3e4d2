"""Every real-world sample in /work/shared/samples/hl7 through the pipeline, each with the outcome it must have."""

from __future__ import annotations

import datetime as dt

import hl7
import pytest

from appointments.models import HisAppointment
from integrations.hl7v2.pipeline import hl7_receive_detailed
from integrations.models import InboundMessage
from patients.models import Encounter, LabResult, Patient
from tests.integrations.hl7v2.conftest import SAMPLES, sample

pytestmark = pytest.mark.django_db

# File → (status, ACK code, error location, error code) of each message in it.
OUTCOMES = {
    "efferent_adt_a01_E_escape_in_pid3_v231.hl7": [("applied", "AA", "", "")],
    "efferent_adt_a08_zz1_invalid_escape_v24_crlf.hl7": [("failed", "AE", "PID^1", "100")],
    "efferent_adt_a28_italy_v25_nulls_crlf.hl7": [("applied", "AA", "", "")],
    "efferent_sample_adt_crlf_blankline.hl7": [("rejected", "AR", "MSH^1^9^1^2", "201")],
    "efferent_sample_orm_hex_escapes.hl7": [("rejected", "AR", "MSH^1^9", "200")],
    "elixir_elr_oru_r01_v251_msh2_5chars_cr.hl7": [("failed", "AE", "OBX^2^14", "102")],
    "elixir_wikipedia_adt_a01_v25_curly_apostrophe_cr.hl7": [("applied", "AA", "", "")],
    "lfh_oru_multiline_short_v26.hl7": [("applied", "AA", "", "")],
    "lfh_sample_win_crlf.hl7": [("rejected", "AR", "MSH^1^2", "102")],
    "ms_ADT-A01-01.hl7": [("applied", "AA", "", "")],
    "ms_ADT-A04-01.hl7": [("applied", "AA", "", "")],
    "ms_ADT-A08-01.hl7": [("applied", "AA", "", "")],
    "ms_ADT-A28-01.hl7": [("applied", "AA", "", "")],
    "ms_ADT-A31-01.hl7": [("applied", "AA", "", "")],
    "ms_ADT-A40-01.hl7": [("failed", "AE", "PID^1^3", "204")],
    "ms_ADT-A40-02.hl7": [("failed", "AE", "PID^1^3", "204")],
    "ms_ADT01-23.hl7": [("applied", "AA", "", "")],
    "ms_ADT01-28.hl7": [("applied", "AA", "", "")],
    "ms_ADT04-251.hl7": [("applied", "AA", "", "")],
    "ms_LAB-ORU-1.hl7": [("applied", "AA", "", "")],
    "ms_LRI_2.0-NG_CBC_Typ_Message.hl7": [("applied", "AA", "", "")],
    "ms_ORU-R01-01.hl7": [("applied", "AA", "", "")],
    "ms_SIU-S12-01.hl7": [("applied", "AA", "", "")],
    "ms_SIU-S12_1.hl7": [("applied", "AA", "", "")],
    "pyhl7_adt_a01_cerner_style_v23_cr.hl7": [("applied", "AA", "", "")],
    "pyhl7_adt_a04_batch_bhs_v25_cr.hl7": [("failed", "AE", "PID^1^7", "102")] * 2,
    # The file repeats the first message in a second batch: a redelivery of a message that failed is tried again.
    "pyhl7_adt_a04_file_fhs_v25_cr.hl7": [("failed", "AE", "PID^1^7", "102")] * 3,
    "pyhl7_bad_batch_missing_msh_cr.hl7": [("rejected", "AR", "MSH^1", "100")],
    "pyhl7_oru_r01_ghh_lab_v24_cr.hl7": [("failed", "AE", "PID^1^7", "102")],
}


def test_every_sample_has_an_expected_outcome():
    assert sorted(OUTCOMES) == sorted(path.name for path in SAMPLES.glob("*.hl7"))


def _ack(raw: bytes) -> hl7.Message:
    return hl7.parse(raw.decode("utf-8"))


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_sample_is_accepted_or_refused_with_a_clear_reason(name):
    results = hl7_receive_detailed(sample(name), transport="file")

    assert [
        (
            result.status,
            result.ack_code,
            str(_ack(result.ack).segments("ERR")[0](2)) if result.ack_code != "AA" else "",
            str(_ack(result.ack).segments("ERR")[0](3)(1)(1)) if result.ack_code != "AA" else "",
        )
        for result in results
    ] == OUTCOMES[name]
    for result in results:
        ack = _ack(result.ack)
        assert str(ack.segment("MSH")(9)).split("^")[0] == "ACK"
        assert str(ack.segment("MSA")(1)) == result.ack_code
    stored = InboundMessage.objects.filter(status__in=["applied", "failed", "rejected"])
    assert all(message.raw for message in stored)


def _patient() -> Patient:
    (patient,) = Patient.objects.all()
    return patient


def _identifiers(patient: Patient) -> set[tuple[str, str, str]]:
    return set(patient.identifiers.values_list("kind", "assigner", "value"))


def test_ms_adt_a01_maps_the_whole_patient():
    hl7_receive_detailed(sample("ms_ADT-A01-01.hl7"), transport="file")

    patient = _patient()
    assert (patient.name, patient.sex, patient.birth_date) == ("ADAM A EVERYMAN", "male", dt.date(1988, 8, 18))
    assert _identifiers(patient) == {("his", "test1", "PATID1234"), ("other", "USSSA", "123456789")}
    assert (patient.address_detail, patient.city, patient.province, patient.postal_code) == (
        "1000 Hospital Lane, Ste. 123",
        "Ann Arbor",
        "MI",
        "99999",
    )
    assert patient.marital_status == "20"
    assert patient.source == "his_import"
    assert list(patient.contact_persons.values_list("name", "relationship", "is_emergency_contact")) == [
        ("ADAM A Evan", "other", True)
    ]
    encounter = Encounter.objects.get(patient=patient)
    assert (encounter.external_id, encounter.kind, encounter.status) == ("40007716", "inpatient", "in_progress")
    assert (encounter.ward, encounter.bed, encounter.doctor_name) == (
        "HUH AE OMU",
        "OMU B-Bed 03",
        "Mohammed Mahi Alaz",
    )
    assert encounter.started_at == dt.datetime(2015, 2, 8, 11, 34, 19, tzinfo=dt.timezone(dt.timedelta(minutes=70)))
    assert encounter.source_system == "ADTApp^GHHSFacility"
    assert list(patient.allergies.values_list("substance", "code", "severity", "reaction")) == [
        ("PENICILLIN", "P", "mild", "CODE16")
    ]
    assert list(patient.procedures.values_list("system", "code", "name", "performer_name")) == [
        ("local", "76164006", "Biopsy of colon (procedure)", "Harold H Patrick")
    ]
    # DG1 is coded in SNOMED CT, which the archive does not keep: applied with a warning, nothing stored.
    assert patient.diagnoses.count() == 0
    message = InboundMessage.objects.get()
    assert message.error == (
        "DG1^1^3^1^3: DG1-3: code system SCT is not mapped in this source's diagnosis systems; 422504002 left out."
    )
    assert message.patient == patient


def test_escapes_nulls_and_addresses_of_the_italian_a28():
    hl7_receive_detailed(sample("efferent_adt_a28_italy_v25_nulls_crlf.hl7"), transport="file")

    patient = _patient()
    assert patient.name == "TEST2 TEST|TEST"  # \F\ is the field separator
    assert _identifiers(patient) == {
        ("his", "SAP", "704251200"),
        ("other", "SS", "XXXXXXX"),
        ("other", "Ministero finanze", "XXXXXXXX"),
    }  # the "" (null) identifiers are left out
    assert (patient.address_detail, patient.city, patient.province, patient.postal_code) == (
        "VIA DELLA PIEGA 12 TRALLaae",
        "SANTEUSANIO FORCONESE",
        "AQ",
        "67020",
    )


def test_escaped_escape_character_inside_pid3_does_not_break_the_identifier_list():
    hl7_receive_detailed(sample("efferent_adt_a01_E_escape_in_pid3_v231.hl7"), transport="file")

    patient = _patient()
    assert patient.name == "WILLIAM A SMITH"
    assert _identifiers(patient) == {("his", "ADT1", "PATID1234"), ("other", "USSSA", "123456789")}
    assert list(patient.contact_persons.values_list("name", "relationship")) == [("OREGANO K SMITH", "spouse")]


def test_bom_and_trailing_spaces_are_cleaned_and_insurance_numbers_kept():
    hl7_receive_detailed(sample("ms_ADT01-23.hl7"), transport="file")

    patient = _patient()
    assert (patient.name, patient.birth_date) == ("DONALD D DUCK", dt.date(1924, 10, 10))
    assert _identifiers(patient) == {("his", "1", "10006579"), ("insurance", "3", "8291"), ("insurance", "9", "8291")}
    assert Encounter.objects.get().external_id == "40007716"


def test_lab_results_with_units_ranges_and_flags():
    hl7_receive_detailed(sample("ms_LRI_2.0-NG_CBC_Typ_Message.hl7"), transport="file")

    patient = _patient()
    assert patient.name == "William A Jones"
    assert LabResult.objects.filter(patient=patient).count() == 28
    hemoglobin = LabResult.objects.get(code="718-7")
    assert (
        hemoglobin.external_id,
        hemoglobin.code_system,
        hemoglobin.value,
        hemoglobin.value_numeric,
        hemoglobin.unit,
        hemoglobin.reference_range,
        hemoglobin.abnormal_flag,
        hemoglobin.panel_code,
    ) == ("R-991133|718-7", "loinc", "12.5", 12.5, "g/mL", "13 to 18", "L", "57021-8")
    assert hemoglobin.observed_at == dt.datetime(2011, 1, 3, 14, 34, 28, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    assert LabResult.objects.get(code="6742-1").value == "Many spherocytes present."


def test_lab_results_skip_pending_observations_and_keep_notes():
    hl7_receive_detailed(sample("ms_LAB-ORU-1.hl7"), transport="file")
    hl7_receive_detailed(sample("ms_ORU-R01-01.hl7"), transport="file")

    assert LabResult.objects.filter(external_id__startswith="82503246|").count() == 3  # two OBX are pending
    assert LabResult.objects.filter(external_id__startswith="890775544|").count() == 5
    salmonella = LabResult.objects.get(external_id="986|625-4.1")
    assert salmonella.value == "Salmonella"
    assert salmonella.note.split("\n") == [
        "Enteric culture includes testing for Salmonella, Shigella, Campylobacter, Yersinia, E.coli O157:H7 & "
        "other STECs, and Aeromonas",
        "Allergy to peanuts observed.",
        "Submission of serum",
        "No Antibodies Detected",
    ]


def test_text_observations_without_a_test_code_take_the_order_code():
    hl7_receive_detailed(sample("lfh_oru_multiline_short_v26.hl7"), transport="file")

    assert sorted(LabResult.objects.values_list("external_id", "code", "value")) == [
        ("FON_0d70c6c8|1487#2", "1487", "[PII] Emergency Department"),
        ("FON_0d70c6c8|1487#3", "1487", "ED Encounter Arrival Date: [ADDRESS] [PERSONALNAME]:"),
    ]
    assert _identifiers(_patient()) == {("his", "MRN", "0d70c6c8")}


def test_siu_mirrors_the_his_appointment():
    hl7_receive_detailed(sample("ms_SIU-S12-01.hl7"), transport="file")

    appointment = HisAppointment.objects.get()
    assert (appointment.external_id, appointment.duration_minutes, appointment.doctor_name) == (
        "36996",
        50,
        "Robert C GE",
    )
    assert (appointment.status, appointment.reason, appointment.department_code) == ("booked", "EMERGENCY", "055")
    assert appointment.start == dt.datetime(2021, 9, 24, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2, minutes=15)))
    assert appointment.patient.name == "ADAM A EVERYMAN"


def test_version_23_acknowledgement_carries_err1_and_msa3():
    (result,) = hl7_receive_detailed(sample("pyhl7_oru_r01_ghh_lab_v24_cr.hl7"), transport="file")

    ack = _ack(result.ack)
    assert str(ack.segment("MSH")(12)) == "2.4"
    assert str(ack.segment("MSA")(2)) == "CNTRL-3456"
    assert str(ack.segment("MSA")(3)) == "PID-7: 196203520 is not a valid date/time."
    err = ack.segment("ERR")
    assert str(err(1)) == "PID^1^7^102&Data type error&HL70357"
    assert str(err(2)) == "PID^1^7"
    assert str(err(3)) == "102^Data type error^HL70357"
    assert str(err(4)) == "E"
    assert str(err(8)) == "PID-7: 196203520 is not a valid date/time."
    assert Patient.objects.count() == 0


def test_batch_without_msh_is_refused_echoing_the_batch_id():
    (result,) = hl7_receive_detailed(sample("pyhl7_bad_batch_missing_msh_cr.hl7"), transport="file")

    ack = _ack(result.ack)
    assert str(ack.segment("MSA")(2)) == "abchs20070101123401-1"
    assert str(ack.segment("ERR")(8)) == "The batch holds no message: no MSH segment follows the BHS header."
    message = InboundMessage.objects.get()
    assert (
        message.status,
        message.sender,
        message.raw.tobytes() if hasattr(message.raw, "tobytes") else message.raw,
    ) == (
        "rejected",
        "^ABCHS",
        sample("pyhl7_bad_batch_missing_msh_cr.hl7"),
    )


def test_msh2_with_five_characters_keeps_its_encoding_in_the_ack():
    (result,) = hl7_receive_detailed(sample("elixir_elr_oru_r01_v251_msh2_5chars_cr.hl7"), transport="file")

    assert result.ack.startswith(b"MSH|^~\\&#|RCVING APPLICAT^1.11.111.1.1111111.3.1.1111^ISO|")
    assert b"\rMSA|AE|PHELR.1.45543\r" in result.ack
