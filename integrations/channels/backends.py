"""Channel backends for development, tests and email.

Production SMS providers plug in beside these through the `SMS_BACKEND` setting.
"""

from __future__ import annotations

import json
import logging
import smtplib
import threading
import uuid
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage

from hcrm.channels import ChannelBackend, ChannelError, DeliveryReceipt, OutgoingMessage

logger = logging.getLogger(__name__)


class ConsoleBackend(ChannelBackend):
    """Prints each message to the log; for development."""

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        provider_id = f"console-{uuid.uuid4().hex[:12]}"
        logger.info("message to %s [%s]: %s", message.to, provider_id, message.body)
        return DeliveryReceipt(provider_id=provider_id)


class FileBackend(ChannelBackend):
    """Appends each message as a JSON line to `var/outbox.jsonl`; for development."""

    lock = threading.Lock()

    def __init__(self) -> None:
        self.path = Path(getattr(settings, "CHANNEL_FILE_PATH", settings.VAR_DIR / "outbox.jsonl"))

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        provider_id = f"file-{uuid.uuid4().hex[:12]}"
        line = json.dumps(
            {
                "id": provider_id,
                "to": message.to,
                "subject": message.subject,
                "body": message.body,
                "reference": message.reference,
            },
            ensure_ascii=False,
        )
        with self.lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        return DeliveryReceipt(provider_id=provider_id)


class MemoryBackend(ChannelBackend):
    """Keeps sent messages in a list (`MemoryBackend.sent`); for tests in one process."""

    sent: list[OutgoingMessage] = []
    lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        with self.lock:
            self.sent.append(message)
            return DeliveryReceipt(provider_id=f"memory-{len(self.sent)}")


class EmailBackend(ChannelBackend):
    """Sends through Django's configured email backend (EMAIL_URL)."""

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        provider_id = f"email-{uuid.uuid4().hex[:12]}"
        email = EmailMessage(
            subject=message.subject or settings.HOSPITAL_NAME,
            body=message.body,
            to=[message.to],
            headers={"Message-ID": f"<{provider_id}@hcrm>"},
        )
        try:
            email.send(fail_silently=False)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            raise ChannelError(f"mail server refused the message: {error}", retryable=False) from error
        except (smtplib.SMTPException, OSError) as error:  # disconnects, timeouts, unreachable server
            raise ChannelError(f"mail server unavailable: {error}", retryable=True) from error
        return DeliveryReceipt(provider_id=provider_id)
