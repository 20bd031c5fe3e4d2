"""A generic HTTP SMS gateway: POST a JSON body built from a template, read the provider's id from the answer.

Configured by settings (from the environment):

    SMS_BACKEND=integrations.channels.http_sms.HttpSmsGatewayBackend
    SMS_GATEWAY_URL=https://sms.example.cn/api/send
    SMS_GATEWAY_AUTH_HEADER="Authorization: Bearer …"      (optional)
    SMS_GATEWAY_BODY_TEMPLATE='{"mobile": "{to}", "content": "{body}", "client_ref": "{reference}"}'
    SMS_GATEWAY_ID_FIELD=data.message_id                    (dotted path in the JSON answer)
    SMS_GATEWAY_TIMEOUT=5                                   (seconds)

This module owns all of the gateway's network I/O. Every failure becomes a
ChannelError saying whether a retry can help: timeouts, connection errors,
429 and 5xx can; other 4xx cannot. The idempotency key travels as
`{reference}`, so a gateway that deduplicates by it never sends twice.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from hcrm.channels import ChannelBackend, ChannelError, DeliveryReceipt, OutgoingMessage

PLACEHOLDERS = ("{to}", "{body}", "{reference}", "{sender}")


class HttpSmsGatewayBackend(ChannelBackend):
    channel = "sms"

    def __init__(self) -> None:
        if not settings.SMS_GATEWAY_URL:
            raise ImproperlyConfigured("SMS_GATEWAY_URL: required by the HTTP SMS gateway backend.")
        self.url = settings.SMS_GATEWAY_URL
        self.template = parse_body_template(settings.SMS_GATEWAY_BODY_TEMPLATE)
        self.headers = {
            "Content-Type": "application/json; charset=utf-8",
            **parse_header(settings.SMS_GATEWAY_AUTH_HEADER),
        }
        self.id_field = settings.SMS_GATEWAY_ID_FIELD
        self.timeout = settings.SMS_GATEWAY_TIMEOUT
        self.session = requests.Session()

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        values = {
            "{to}": message.to,
            "{body}": message.body,
            "{reference}": message.reference,
            "{sender}": settings.SMS_GATEWAY_SENDER,
        }
        payload = fill(self.template, values)
        try:
            response = self.session.post(
                self.url,
                data=json.dumps(payload, ensure_ascii=False).encode(),
                headers=self.headers,
                timeout=(self.timeout, self.timeout),
            )
        except (requests.Timeout, requests.ConnectionError) as error:
            raise ChannelError(f"gateway unreachable: {error.__class__.__name__}", retryable=True) from error
        except requests.RequestException as error:
            raise ChannelError(f"gateway request failed: {error}", retryable=False) from error
        if response.status_code == 429 or response.status_code >= 500:
            raise ChannelError(f"gateway busy or failing: HTTP {response.status_code}", retryable=True)
        if response.status_code >= 400:
            raise ChannelError(
                f"gateway refused the message: HTTP {response.status_code} {response.text[:200]}", retryable=False
            )
        try:
            provider_id = dig(response.json(), self.id_field)
        except (ValueError, KeyError, IndexError, TypeError):
            provider_id = None
        if not provider_id:
            # Accepted, but the answer names no id: keep our reference so receipts can still be matched.
            provider_id = message.reference
        return DeliveryReceipt(provider_id=str(provider_id))


def parse_body_template(text: str) -> Any:
    try:
        template = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImproperlyConfigured(f"SMS_GATEWAY_BODY_TEMPLATE: not valid JSON ({error}).") from None
    if "{to}" not in text or "{body}" not in text:
        raise ImproperlyConfigured("SMS_GATEWAY_BODY_TEMPLATE: must contain {to} and {body}.")
    return template


def parse_header(text: str) -> dict[str, str]:
    if not text:
        return {}
    name, separator, value = text.partition(":")
    if not separator or not name.strip():
        raise ImproperlyConfigured("SMS_GATEWAY_AUTH_HEADER: expected 'Header-Name: value'.")
    return {name.strip(): value.strip()}


def fill(template: Any, values: dict[str, str]) -> Any:
    """Replace placeholders inside the template's strings; the values never become JSON syntax."""
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, values) for value in template]
    if isinstance(template, str):
        for placeholder, value in values.items():
            template = template.replace(placeholder, value)
        return template
    return template


def dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data
