"""The source profile editor: validation of the code tables, create for a stray sender, edit, audit."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from hcrm.models import AuditEntry
from integrations.models import SourceProfile
from integrations.profiles import source_profile_create, source_profile_errors
from tests.integrations.console_fixtures import inbound, source

pytestmark = pytest.mark.django_db


def _form(**changes) -> dict:
    data = {
        "name": "HIS 中医院",
        "protocol": "hl7v2",
        "sending_application": "HIS",
        "sending_facility": "ZYY",
        "is_active": "on",
        "default_charset": "gb18030",
        "mrn_assigner": "ZYY",
        "identifier_types": json.dumps({"national_id": ["SFZ"], "mrn": ["MR"], "visit_card": ["JZK"]}),
        "sex_codes": json.dumps({"1": "male", "2": "female", "9": "unknown"}),
        "department_codes": json.dumps({"0101": "NK"}),
        "diagnosis_systems": json.dumps({"ICD10": "icd10", "TCM": "tcm_disease"}),
        "note": "",
    }
    data.update(changes)
    return data


def test_the_code_tables_are_checked_against_the_value_sets(internal_medicine):
    errors = source_profile_errors(
        {
            "identifier_types": {"national_id": ["NI"], "mrn": ["NI", ""], "license": ["DL"]},
            "sex_codes": {"1": "male", "3": "alien"},
            "department_codes": {"0101": "NK", "0202": "XX", "0303": "YY"},
            "diagnosis_systems": {"ICD10": "icd11"},
        }
    )

    assert errors == {
        "identifier_types": [
            "Unknown meanings: license. Use national_id, mrn, visit_card, insurance, passport.",
            'mrn: enter a list of codes such as ["MR", "PI"].',
        ],
        "sex_codes": ["Unknown sex values: alien. Use male, female, other, unknown."],
        "department_codes": ["Unknown department codes: XX, YY."],
        "diagnosis_systems": ["Unknown code systems: icd11. Use icd10, tcm_disease, tcm_syndrome, snomed."],
    }


def test_a_code_with_two_meanings_is_named():
    errors = source_profile_errors({"identifier_types": {"national_id": ["NI"], "mrn": ["MR", "NI"]}})

    assert errors == {"identifier_types": ["Code NI is listed for both national_id and mrn."]}


def test_tables_of_the_wrong_shape_are_refused():
    errors = source_profile_errors(
        {"identifier_types": ["MR"], "sex_codes": "M=male", "department_codes": [], "diagnosis_systems": 3}
    )

    assert errors == {
        "identifier_types": ["Enter an object mapping each meaning to a list of identifier type codes."],
        "sex_codes": ["Enter an object mapping the sender's codes to sex values."],
        "department_codes": [
            "Enter an object mapping the sender's department codes to this hospital's department codes."
        ],
        "diagnosis_systems": ["Enter an object mapping the sender's codes to code systems."],
    }


def test_the_service_refuses_a_bad_profile_and_writes_nothing(staff):
    with pytest.raises(ValidationError) as raised:
        source_profile_create(actor=staff["administrator"], data={"name": "X", "department_codes": {"01": "NOPE"}})

    assert raised.value.message_dict == {"department_codes": ["Unknown department codes: NOPE."]}
    assert SourceProfile.objects.count() == 0


def test_the_administrator_creates_a_profile_for_a_sender_that_had_none(client, staff, internal_medicine):
    inbound(sender="HIS^ZYY", control_id="S1", status="failed")
    client.force_login(staff["administrator"])

    listing = client.get("/integrations/sources/")
    form = client.get("/integrations/sources/new/", {"sender": "HIS^ZYY", "protocol": "hl7v2"})
    response = client.post("/integrations/sources/new/", _form())

    assert 'href="/integrations/sources/new/?sender=HIS%5EZYY&amp;protocol=hl7v2"' in listing.content.decode()
    assert form.context["form"].initial["sending_application"] == "HIS"
    assert form.context["form"].initial["sending_facility"] == "ZYY"
    assert form.context["form"].initial["sex_codes"]["2"] == "female"
    profile = SourceProfile.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/integrations/sources/{profile.uuid}/"
    assert (profile.name, profile.default_charset, profile.mrn_assigner) == ("HIS 中医院", "gb18030", "ZYY")
    assert profile.identifier_types == {"national_id": ["SFZ"], "mrn": ["MR"], "visit_card": ["JZK"]}
    assert profile.department_codes == {"0101": "NK"}
    entry = AuditEntry.objects.get(event="create")
    assert entry.actor == staff["administrator"]
    assert entry.object_pk == str(profile.pk)
    assert "Every sender has a profile." in client.get("/integrations/sources/").content.decode()


def test_unknown_department_codes_are_named_on_the_form_and_nothing_is_saved(client, staff, internal_medicine):
    profile = source("HIS", "ZYY", department_codes={"0101": "NK"})
    client.force_login(staff["administrator"])

    response = client.post(
        f"/integrations/sources/{profile.uuid}/", _form(department_codes=json.dumps({"0101": "NK", "0909": "GK"}))
    )
    broken = client.post(f"/integrations/sources/{profile.uuid}/", _form(sex_codes="{not json"))

    assert response.status_code == 400
    assert response.context["form"].errors == {"department_codes": ["Unknown department codes: GK."]}
    assert broken.status_code == 400
    assert broken.context["form"].errors == {"sex_codes": ["Enter a valid JSON."]}
    assert "{not json" in broken.content.decode()
    profile.refresh_from_db()
    assert profile.department_codes == {"0101": "NK"}
    assert not AuditEntry.objects.filter(event="update").exists()


def test_editing_a_profile_saves_it_and_audits_the_changed_fields(client, staff, internal_medicine):
    profile = source("HIS", "ZYY", name="HIS 中医院", mrn_assigner="ZYY", default_charset="gb18030")
    client.force_login(staff["administrator"])

    response = client.post(
        f"/integrations/sources/{profile.uuid}/",
        _form(identifier_types=json.dumps({"mrn": ["MR", "PI"]}), sex_codes=json.dumps({"1": "male", "2": "female"})),
    )

    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.identifier_types == {"mrn": ["MR", "PI"]}
    assert profile.sex_codes == {"1": "male", "2": "female"}
    entry = AuditEntry.objects.get(event="update")
    assert entry.additional_data == {
        "changed": ["department_codes", "diagnosis_systems", "identifier_types", "sex_codes"]
    }


def test_a_second_profile_for_the_same_sender_is_refused(client, staff, internal_medicine):
    source("HIS", "ZYY")
    client.force_login(staff["administrator"])

    response = client.post("/integrations/sources/new/", _form(name="Again"))

    assert response.status_code == 400
    assert len(response.context["form"].non_field_errors()) == 1
    assert SourceProfile.objects.count() == 1
