"""The HTTP door (API key with hl7.submit) and the file door (hl7_import)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from hcrm.models import IntegrationKey
from integrations.models import InboundMessage
from patients.models import Patient
from tests.integrations.hl7v2.conftest import SAMPLES
from tests.integrations.hl7v2.messages import adt, pid, pv1

pytestmark = pytest.mark.django_db
URL = "/api/v1/integrations/hl7/"
ER7 = "x-application/hl7-v2+er7"


def _key(*scopes: str) -> str:
    _obj, key = IntegrationKey.objects.create_key(name="his", scopes=list(scopes))
    return key


def test_no_key_is_refused_and_nothing_stored(client):
    response = client.post(URL, adt(), content_type=ER7)

    assert response.status_code == 401
    assert InboundMessage.objects.count() == 0


def test_wrong_scope_is_forbidden_and_nothing_stored(client):
    response = client.post(URL, adt(), content_type=ER7, HTTP_AUTHORIZATION=f"Api-Key {_key('fhir.read')}")

    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "permission_denied"
    assert InboundMessage.objects.count() == 0


@pytest.mark.parametrize("content_type", [ER7, "text/plain", "application/hl7-v2"])
def test_allowed_key_gets_the_ack_as_the_body(client, content_type):
    response = client.post(URL, adt(), content_type=content_type, HTTP_AUTHORIZATION=f"Api-Key {_key('hl7.submit')}")

    assert response.status_code == 200
    assert response["Content-Type"] == ER7
    assert response.content.split(b"\r")[1] == b"MSA|AA|MSG0001"
    assert InboundMessage.objects.get().transport == "http"
    assert Patient.objects.count() == 1


def test_content_errors_answer_400_with_the_ack(client):
    body = adt(segments=("EVN|A01|20250301083000", pid(birth="20991231"), pv1()))

    response = client.post(URL, body, content_type=ER7, HTTP_AUTHORIZATION=f"Api-Key {_key('hl7.submit')}")

    assert response.status_code == 400
    assert response.content.split(b"\r")[1] == b"MSA|AE|MSG0001"
    assert (
        b"|PID^1^7|102^Data type error^HL70357|E||||PID-7: the birth date 2099-12-31 is impossible.\r"
        in response.content
    )


def test_a_batch_body_gets_one_ack_per_message(client):
    body = (SAMPLES / "pyhl7_adt_a04_batch_bhs_v25_cr.hl7").read_bytes()

    response = client.post(URL, body, content_type=ER7, HTTP_AUTHORIZATION=f"Api-Key {_key('hl7.submit')}")

    assert response.status_code == 400
    assert response.content.count(b"MSA|AE|") == 2


def test_hl7_import_prints_a_summary_per_file_and_fails_when_anything_failed(tmp_path, capsys):
    good = tmp_path / "good.hl7"
    good.write_bytes(adt("F1") + adt("F2", trigger="A08", segments=("EVN|A08|20250302083000", pid(), pv1())))

    call_command("hl7_import", str(good))
    assert capsys.readouterr().out.splitlines() == [
        f"{good}: Applied 2, Duplicate 0, Failed 0, Rejected 0",
        "Total: Applied 2, Duplicate 0, Failed 0, Rejected 0",
    ]

    with pytest.raises(CommandError) as raised:
        call_command(
            "hl7_import",
            str(SAMPLES / "pyhl7_adt_a04_file_fhs_v25_cr.hl7"),
            str(SAMPLES / "pyhl7_adt_a04_batch_bhs_v25_cr.hl7"),
            str(good),
        )
    assert raised.value.returncode == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{SAMPLES / 'pyhl7_adt_a04_file_fhs_v25_cr.hl7'}: Applied 0, Duplicate 0, Failed 3, Rejected 0",
        f"{SAMPLES / 'pyhl7_adt_a04_batch_bhs_v25_cr.hl7'}: Applied 0, Duplicate 0, Failed 2, Rejected 0",
        f"{good}: Applied 0, Duplicate 2, Failed 0, Rejected 0",
        "Total: Applied 0, Duplicate 2, Failed 5, Rejected 0",
    ]
    assert InboundMessage.objects.filter(transport="file", status="failed").count() == 2
