"""FHIR test fixtures: API-key clients per scope, the shared samples, and small resource builders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rest_framework.test import APIClient

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "samples" / "fhir"
FHIR_JSON = "application/fhir+json"


def sample(name: str) -> dict:
    path = SAMPLES / "examples" / name
    if not path.exists():
        path = SAMPLES / "synthea" / name
    return json.loads(path.read_text(encoding="utf-8"))


class FhirClient(APIClient):
    """A test client that speaks application/fhir+json."""

    def post_fhir(self, path: str, body, **extra):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.post(path, data=data, content_type=FHIR_JSON, HTTP_ACCEPT=FHIR_JSON, **extra)

    def put_fhir(self, path: str, body, **extra):
        return self.put(path, data=json.dumps(body), content_type=FHIR_JSON, HTTP_ACCEPT=FHIR_JSON, **extra)

    def get_fhir(self, path: str, **extra):
        extra.setdefault("HTTP_ACCEPT", FHIR_JSON)
        return self.get(path, **extra)

    def as_user(self, user):
        from rest_framework.authtoken.models import Token

        token, _created = Token.objects.get_or_create(user=user)
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
        return self


def key_client(*scopes: str, source_system: str = "EMR") -> FhirClient:
    from hcrm.models import IntegrationKey

    _key, secret = IntegrationKey.objects.create_key(
        name=f"key-{'-'.join(scopes)}", scopes=list(scopes), source_system=source_system
    )
    client = FhirClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    return client


@pytest.fixture
def emr(db):
    """The EMR's key: it may write and read FHIR resources."""
    return key_client("fhir.write", "fhir.read")


@pytest.fixture
def reader(db):
    return key_client("fhir.read", source_system="PORTAL")


@pytest.fixture
def fhir(db):
    """An unauthenticated FHIR client."""
    return FhirClient()


def patient_resource(**overrides) -> dict:
    resource = {
        "resourceType": "Patient",
        "identifier": [
            {
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                "system": "urn:oid:1.2.156.112604.1.2.1",
                "value": "MR0001",
            },
            {"system": "urn:oid:2.16.156.10011.1.3", "value": "110105199001011232"},
        ],
        "name": [{"use": "official", "family": "王", "given": ["小明"]}],
        "gender": "male",
        "birthDate": "1990-01-01",
        "telecom": [{"system": "phone", "value": "13812345678", "use": "mobile"}],
        "address": [
            {"use": "home", "line": ["朝阳路 1 号"], "city": "北京市", "district": "朝阳区", "state": "北京市"}
        ],
    }
    resource.update(overrides)
    return resource


def transaction(*entries, kind: str = "transaction") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post_entry(resource: dict, full_url: str = "", **request) -> dict:
    entry = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"], **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def observation(subject: str, *, id: str = "obs-1", value: float = 6.1, encounter: str = "") -> dict:
    resource = {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2024-03-01T08:30:00+08:00",
        "valueQuantity": {"value": value, "unit": "mmol/L"},
        "referenceRange": [{"low": {"value": 3.9, "unit": "mmol/L"}, "high": {"value": 6.1, "unit": "mmol/L"}}],
        "interpretation": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}
        ],
    }
    if encounter:
        resource["encounter"] = {"reference": encounter}
    return resource


def encounter(subject: str, *, id: str = "enc-1") -> dict:
    return {
        "resourceType": "Encounter",
        "id": id,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": subject},
        "participant": [{"individual": {"display": "李医生"}}],
        "period": {"start": "2024-02-28T09:00:00+08:00", "end": "2024-03-03T10:00:00+08:00"},
        "reasonCode": [{"text": "胸闷"}],
    }


def condition(subject: str, *, id: str = "cond-1", code: str = "I10", encounter: str = "") -> dict:
    resource = {
        "resourceType": "Condition",
        "id": id,
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code, "display": "高血压"}]},
        "subject": {"reference": subject},
        "recordedDate": "2024-03-01",
    }
    if encounter:
        resource["encounter"] = {"reference": encounter}
    return resource
