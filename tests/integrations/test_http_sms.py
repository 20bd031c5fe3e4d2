"""The generic HTTP SMS gateway backend against a local fake gateway that sometimes fails."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from hcrm.channels import ChannelError, OutgoingMessage, channel_backend
from integrations.channels.http_sms import HttpSmsGatewayBackend, dig, fill, parse_body_template, parse_header
from patients.models import MessageStatus, OutboundMessage
from patients.services import messages as outbox
from tests.factories import PatientFactory


class FakeGateway(BaseHTTPRequestHandler):
    """Numbers ending in 0 get 503, in 1 get 400, in 2 answer after the client's timeout; every third
    request in flaky mode gets 503. Accepted messages get {"data": {"message_id": "gw-N"}}."""

    received: list[dict] = []
    flaky = False
    count = 0

    def do_POST(self):  # noqa: N802 (the standard library's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).count += 1
        type(self).received.append({"body": body, "auth": self.headers.get("X-Api-Key")})
        to = body["mobile"]
        if self.flaky and self.count % 3 == 1:
            return self._answer(503, {"error": "busy"})
        if to.endswith("0"):
            return self._answer(503, {"error": "maintenance"})
        if to.endswith("1"):
            return self._answer(400, {"error": "invalid number"})
        if to.endswith("2"):
            time.sleep(2.5)
        return self._answer(200, {"data": {"message_id": f"gw-{self.count}"}})

    def _answer(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the timeout case)

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway(settings):
    FakeGateway.received, FakeGateway.flaky, FakeGateway.count = [], False, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SMS_GATEWAY_URL = f"http://127.0.0.1:{server.server_port}/send"
    settings.SMS_GATEWAY_AUTH_HEADER = "X-Api-Key: secret-123"
    settings.SMS_GATEWAY_BODY_TEMPLATE = (
        '{"mobile": "{to}", "content": "{body}", "ref": "{reference}", "sign": "{sender}"}'
    )
    settings.SMS_GATEWAY_ID_FIELD = "data.message_id"
    settings.SMS_GATEWAY_TIMEOUT = 1
    settings.SMS_GATEWAY_SENDER = "中医院"
    settings.CHANNEL_BACKENDS = {
        **settings.CHANNEL_BACKENDS,
        "sms": "integrations.channels.http_sms.HttpSmsGatewayBackend",
    }
    channel_backend.cache_clear()
    yield FakeGateway
    channel_backend.cache_clear()
    server.shutdown()
    server.server_close()


def _message(to: str) -> OutgoingMessage:
    return OutgoingMessage(to=to, body='复诊提醒 "明天" 8:00\n请带病历', reference="appointment:5:reminder")


def test_an_accepted_message_returns_the_gateways_id(gateway):
    receipt = HttpSmsGatewayBackend().send(_message("+8613812345678"))

    assert receipt.provider_id == "gw-1"
    assert gateway.received == [
        {
            "body": {"mobile": "+8613812345678", "content": '复诊提醒 "明天" 8:00\n请带病历',
                     "ref": "appointment:5:reminder", "sign": "中医院"},
            "auth": "secret-123",
        }
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("to", "retryable"), [("+8613800000000", True), ("+8613800000001", False), ("+8613800000002", True)]
)
def test_failures_say_whether_a_retry_can_help(gateway, to, retryable):
    with pytest.raises(ChannelError) as error:
        HttpSmsGatewayBackend().send(_message(to))

    assert error.value.retryable is retryable


def test_an_unreachable_gateway_is_worth_retrying(gateway, settings):
    settings.SMS_GATEWAY_URL = "http://127.0.0.1:9/send"

    with pytest.raises(ChannelError) as error:
        HttpSmsGatewayBackend().send(_message("+8613812345678"))

    assert error.value.retryable is True


@pytest.mark.django_db
def test_the_outbox_retries_a_flaky_gateway_until_it_accepts(gateway, sms_template, no_quiet_hours):
    gateway.flaky = True
    patient = PatientFactory(mobile="+8613812345678")
    message = outbox.message_send(
        patient=patient, channel="sms", purpose="appointment", template=sms_template, context={"content": "x"},
        idempotency_key="flaky-1",
    )  # fmt: skip

    outcomes = []
    for _attempt in range(3):
        outcomes.append(outbox.message_deliver(message_id=message.pk))
        OutboundMessage.objects.filter(pk=message.pk).update(not_before=timezone.now())

    message.refresh_from_db()
    assert outcomes == ["retry", "sent", "not claimed"]
    assert (message.status, message.provider_id, message.attempts) == (MessageStatus.SENT, "gw-2", 2)
    assert [request["body"]["ref"] for request in gateway.received] == ["flaky-1", "flaky-1"]


@pytest.mark.django_db
def test_the_outbox_fails_a_refused_number_at_once(gateway, sms_template, no_quiet_hours):
    patient = PatientFactory(mobile="+8613800000001")
    message = outbox.message_send(
        patient=patient, channel="sms", purpose="appointment", template=sms_template, context={"content": "x"},
        idempotency_key="refused-1",
    )  # fmt: skip

    outcome = outbox.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert (outcome, message.status) == ("failed", MessageStatus.FAILED)
    assert message.status_reason.startswith("gateway refused the message: HTTP 400")


def test_values_never_become_json_syntax():
    template = parse_body_template('{"to": "{to}", "text": "{body}", "tags": ["{reference}"]}')

    filled = fill(template, {"{to}": '1", "admin": "yes', "{body}": "}", "{reference}": "r"})

    assert filled == {"to": '1", "admin": "yes', "text": "}", "tags": ["r"]}


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("SMS_GATEWAY_URL", "", "SMS_GATEWAY_URL: required"),
        ("SMS_GATEWAY_BODY_TEMPLATE", "{not json", "SMS_GATEWAY_BODY_TEMPLATE: not valid JSON"),
        ("SMS_GATEWAY_BODY_TEMPLATE", '{"text": "{body}"}', "SMS_GATEWAY_BODY_TEMPLATE: must contain {to} and {body}"),
        ("SMS_GATEWAY_AUTH_HEADER", "no-colon", "SMS_GATEWAY_AUTH_HEADER: expected"),
    ],
)
def test_a_misconfigured_gateway_names_the_setting(settings, setting, value, message):
    settings.SMS_GATEWAY_URL = "http://127.0.0.1:9/send"
    setattr(settings, setting, value)

    with pytest.raises(ImproperlyConfigured) as error:
        HttpSmsGatewayBackend()

    assert str(error.value).startswith(message)


def test_helpers():
    assert parse_header("Authorization: Bearer a:b") == {"Authorization": "Bearer a:b"}
    assert dig({"data": [{"id": 7}]}, "data.0.id") == 7
