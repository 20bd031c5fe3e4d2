"""Pull sync against a real HTTP server on 127.0.0.1 that serves scripted pages, including failing ones."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.fhir.client import FhirClientError, FhirRemoteClient
from integrations.fhir.sync import fhir_remote_sync
from integrations.fhir.tasks import fhir_pull_due
from integrations.models import FhirRemote, FhirSyncCursor, InboundMessage
from patients.models import LabResult, Patient, PatientIdentifier

pytestmark = pytest.mark.django_db


class Remote:
    """Scripted answers per (path, query) and a log of every request received."""

    def __init__(self) -> None:
        self.routes: dict[str, list] = {}
        self.requests: list[tuple[str, dict, str]] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handler(self):
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                remote.requests.append((url.path, query, self.headers.get("Authorization", "")))
                key = url.path.rsplit("/", 1)[-1] + ("?page=" + query["page"][0] if "page" in query else "")
                answers = remote.routes.get(key) or [(404, {"resourceType": "OperationOutcome"})]
                status, body = answers.pop(0) if len(answers) > 1 else answers[0]
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler

    def page(self, key: str, resources: list[dict], next_key: str = "", *answers_before) -> None:
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
        }
        if next_key:
            bundle["link"] = [{"relation": "next", "url": self.base + next_key}]
        self.routes[key] = [*answers_before, (200, bundle)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def remote_server():
    server = Remote()
    yield server
    server.close()


def patient(id: str, name: str, updated: str, mrn: str) -> dict:
    return {
        "resourceType": "Patient",
        "id": id,
        "meta": {"lastUpdated": updated},
        "identifier": [{"system": "urn:oid:1.2.3.4", "type": {"coding": [{"code": "MR"}]}, "value": mrn}],
        "name": [{"text": name}],
        "gender": "female",
        "birthDate": "1980-05-06",
    }


def observation(id: str, patient_id: str, updated: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": id,
        "meta": {"lastUpdated": updated},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2024-01-02T03:04:05Z",
        "valueQuantity": {"value": 131, "unit": "g/L"},
    }


def make_remote(server: Remote, **fields) -> FhirRemote:
    defaults = {"name": "EMR", "base_url": server.base, "resource_types": ["Patient", "Observation"], "page_size": 2}
    return FhirRemote.objects.create(**{**defaults, **fields})


def no_sleep(seconds):
    pass


def test_pull_follows_next_links_and_resolves_remote_patient_references(remote_server):
    remote_server.page(
        "Patient",
        [patient("p1", "李雷", "2024-01-01T00:00:00Z", "A1"), patient("p2", "韩梅梅", "2024-01-01T00:00:05Z", "A2")],
        "Patient?page=2",
    )
    remote_server.page("Patient?page=2", [patient("p3", "张伟", "2024-01-02T00:00:00Z", "A3")])
    remote_server.page("Observation", [observation("o1", "p2", "2024-01-03T00:00:00Z")])
    remote = make_remote(remote_server)

    result = fhir_remote_sync(remote=remote, sleep=no_sleep)

    assert (result.pages, result.resources, result.failed_entries, result.errors) == (3, 4, 0, [])
    assert sorted(Patient.objects.values_list("name", flat=True)) == ["张伟", "李雷", "韩梅梅"]
    assert LabResult.objects.get().patient.name == "韩梅梅"
    assert LabResult.objects.get().external_id == "o1"
    cursors = {c.resource_type: (c.high_water.isoformat(), c.next_url, c.pages) for c in FhirSyncCursor.objects.all()}
    assert cursors == {
        "Patient": ("2024-01-02T00:00:00+00:00", "", 2),
        "Observation": ("2024-01-03T00:00:00+00:00", "", 1),
    }
    assert InboundMessage.objects.filter(transport="pull", status="applied").count() == 3
    first = remote_server.requests[0]
    assert first[0] == "/fhir/Patient"
    assert first[1] == {"_sort": ["_lastUpdated"], "_count": ["2"]}
    remote.refresh_from_db()
    assert (remote.last_status, remote.last_error, remote.running_since) == ("ok", "", None)


def test_the_next_run_asks_from_the_high_water_mark_with_ge(remote_server):
    remote_server.page("Patient", [patient("p1", "李雷", "2024-01-01T00:00:00Z", "A1")])
    remote = make_remote(remote_server, resource_types=["Patient"])
    fhir_remote_sync(remote=remote, sleep=no_sleep)

    fhir_remote_sync(remote=remote, sleep=no_sleep)

    second = remote_server.requests[1]
    assert second[1]["_lastUpdated"] == ["ge2024-01-01T00:00:00Z"]
    # The resource at the high-water instant is read again and changes nothing.
    assert Patient.objects.count() == 1
    assert PatientIdentifier.objects.filter(patient__name="李雷").count() == 2


def test_a_failing_page_is_retried_and_the_cursor_never_skips_it(remote_server):
    remote_server.page("Patient", [patient("p1", "李雷", "2024-01-01T00:00:00Z", "A1")], "Patient?page=2")
    remote_server.routes["Patient?page=2"] = [(503, {"resourceType": "OperationOutcome"})] * 5
    remote = make_remote(remote_server, resource_types=["Patient"])
    delays = []

    result = fhir_remote_sync(remote=remote, sleep=delays.append)

    assert delays == [1, 4, 15]
    assert result.errors == [f"{remote_server.base}Patient?page=2 answered 503"]
    cursor = FhirSyncCursor.objects.get()
    assert (cursor.next_url, cursor.high_water.isoformat()) == (
        f"{remote_server.base}Patient?page=2",
        "2024-01-01T00:00:00+00:00",
    )
    remote.refresh_from_db()
    assert (remote.last_status, remote.running_since) == ("failed", None)

    remote_server.page("Patient?page=2", [patient("p2", "韩梅梅", "2024-01-01T00:00:00Z", "A2")])
    result = fhir_remote_sync(remote=remote, sleep=no_sleep)

    assert (result.pages, result.errors) == (1, [])
    assert remote_server.requests[-1][0] == "/fhir/Patient" and remote_server.requests[-1][1] == {"page": ["2"]}
    assert sorted(Patient.objects.values_list("name", flat=True)) == ["李雷", "韩梅梅"]
    assert FhirSyncCursor.objects.get().next_url == ""


def test_a_transient_failure_recovers_within_the_run(remote_server):
    remote_server.page(
        "Patient", [patient("p1", "李雷", "2024-01-01T00:00:00Z", "A1")], "", (500, {}), (200, b"{trunc")
    )
    remote = make_remote(remote_server, resource_types=["Patient"])
    delays = []

    result = fhir_remote_sync(remote=remote, sleep=delays.append)

    assert (delays, result.pages, result.errors) == ([1, 4], 1, [])
    assert Patient.objects.get().name == "李雷"


def test_a_bad_resource_goes_to_the_error_queue_and_the_cursor_moves_on(remote_server):
    remote_server.page("Observation", [observation("o1", "unknown", "2024-01-03T00:00:00Z")])
    remote = make_remote(remote_server, resource_types=["Observation"])

    result = fhir_remote_sync(remote=remote, sleep=no_sleep)

    assert (result.pages, result.resources, result.failed_entries) == (1, 0, 1)
    message = InboundMessage.objects.get()
    assert message.status == "failed"
    assert message.error == "Bundle.entry[0].resource.subject: No patient Patient/unknown."
    assert FhirSyncCursor.objects.get().high_water.isoformat() == "2024-01-03T00:00:00+00:00"


def test_bearer_secret_comes_from_the_named_environment_variable(remote_server, monkeypatch):
    remote_server.page("Patient", [])
    monkeypatch.setenv("EMR_FHIR_TOKEN", "s3cret")
    remote = make_remote(remote_server, resource_types=["Patient"], auth_kind="bearer", secret_env="EMR_FHIR_TOKEN")

    fhir_remote_sync(remote=remote, sleep=no_sleep)

    assert remote_server.requests[0][2] == "Bearer s3cret"


def test_a_missing_secret_is_an_error_no_retry_helps(remote_server, monkeypatch):
    monkeypatch.delenv("EMR_FHIR_TOKEN", raising=False)
    remote = make_remote(remote_server, auth_kind="bearer", secret_env="EMR_FHIR_TOKEN")

    with pytest.raises(FhirClientError) as error:
        FhirRemoteClient(remote).get_page(remote_server.base + "Patient")

    assert error.value.retryable is False
    assert remote_server.requests == []


def test_a_next_link_to_another_host_is_not_followed(remote_server):
    remote = make_remote(remote_server)

    with pytest.raises(FhirClientError) as error:
        FhirRemoteClient(remote).get_page("http://example.invalid/fhir/Patient?page=2")

    assert error.value.retryable is False


def test_a_claimed_remote_is_left_to_its_worker(remote_server):
    from django.utils import timezone

    remote = make_remote(remote_server)
    FhirRemote.objects.filter(pk=remote.pk).update(running_since=timezone.now())

    assert fhir_remote_sync(remote=remote, sleep=no_sleep) is None
    assert remote_server.requests == []


def test_the_beat_task_pulls_every_enabled_remote(remote_server, monkeypatch):
    from integrations.fhir import tasks

    monkeypatch.setattr(tasks.fhir_pull_remote, "delay", tasks.fhir_pull_remote)
    remote_server.page("Patient", [patient("p1", "李雷", "2024-01-01T00:00:00Z", "A1")])
    make_remote(remote_server, resource_types=["Patient"])
    make_remote(remote_server, name="OFF", enabled=False)

    assert fhir_pull_due() == 1

    assert Patient.objects.get().name == "李雷"
    assert len(remote_server.requests) == 1
