"""Where inbound data comes from, how each source is read, and the raw log of everything received."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from hcrm.models import BaseModel
from integrations.models.indexes import TokenArrayIndex


def _choices_constraint(field: str, choices: type[models.TextChoices], name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


class Protocol(models.TextChoices):
    HL7V2 = "hl7v2", _("HL7 v2")
    FHIR = "fhir", _("FHIR R4")


class Transport(models.TextChoices):
    MLLP = "mllp", _("MLLP")
    HTTP = "http", _("HTTP")
    FILE = "file", _("File")
    PULL = "pull", _("FHIR pull sync")
    BULK = "bulk", _("Bulk NDJSON")


class Charset(models.TextChoices):
    UTF8 = "utf-8", _("UTF-8")
    GB18030 = "gb18030", _("GB18030 / GBK")
    LATIN1 = "latin-1", _("ASCII / ISO 8859-1")


def default_identifier_types() -> dict[str, list[str]]:
    """PID-3 identifier type codes (HL7 table 0203 and common local ones) per archive meaning."""
    return {
        "national_id": ["NI", "NNCHN", "CZ", "SFZ"],
        "mrn": ["MR", "PI", "PT"],
        "visit_card": ["VN", "JZK", "CARD"],
        "insurance": ["SN", "HC", "YB", "MC"],
        "passport": ["PPN"],
    }


def default_sex_codes() -> dict[str, str]:
    """HL7 table 0001 and GB/T 2261.1 codes to archive sex values."""
    return {
        "M": "male",
        "F": "female",
        "O": "other",
        "A": "other",
        "U": "unknown",
        "N": "unknown",
        "1": "male",
        "2": "female",
        "0": "unknown",
        "9": "unknown",
    }


def default_diagnosis_systems() -> dict[str, str]:
    """Coding-system names sent in DG1-3.3 / CE.3 to archive code systems."""
    return {
        "I10": "icd10",
        "I10C": "icd10",
        "ICD10": "icd10",
        "ICD-10": "icd10",
        "ICD10CN": "icd10",
        "GB/T15657": "tcm_disease",
        "TCM": "tcm_disease",
        "TCMD": "tcm_disease",
        "TCMS": "tcm_syndrome",
        "ZH": "tcm_syndrome",
    }


class SourceProfile(BaseModel):
    """One sending system (HL7: sending application + facility; FHIR: a named source) and how to read it."""

    protocol = models.CharField(_("protocol"), max_length=10, choices=Protocol.choices, default=Protocol.HL7V2)
    sending_application = models.CharField(_("sending application"), max_length=100, blank=True, default="")
    sending_facility = models.CharField(_("sending facility"), max_length=100, blank=True, default="")
    name = models.CharField(pgettext_lazy("thing", "name"), max_length=100)
    is_active = models.BooleanField(_("active"), default=True)
    default_charset = models.CharField(
        _("default character set"),
        max_length=10,
        choices=Charset.choices,
        default=Charset.UTF8,
        help_text=_("Used when a message leaves MSH-18 empty."),
    )
    identifier_types = models.JSONField(
        _("identifier type codes"),
        default=default_identifier_types,
        help_text=_("Which PID-3 identifier type codes mean national ID, MRN, visit card, insurance or passport."),
    )
    sex_codes = models.JSONField(_("sex codes"), default=default_sex_codes)
    department_codes = models.JSONField(
        _("department codes"),
        default=dict,
        blank=True,
        help_text=_("The sender's department codes mapped to this hospital's department codes."),
    )
    diagnosis_systems = models.JSONField(_("diagnosis code systems"), default=default_diagnosis_systems)
    mrn_assigner = models.CharField(
        _("MRN assigning authority"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("Identifiers of MRN type from this assigning authority become the patient's MRN."),
    )
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["protocol", "sending_application", "sending_facility"]
        verbose_name = _("source profile")
        verbose_name_plural = _("source profiles")
        constraints = [
            models.UniqueConstraint(
                fields=["protocol", "sending_application", "sending_facility"],
                name="source_profile_unique",
            ),
            _choices_constraint("protocol", Protocol, "source_profile_protocol_valid"),
            _choices_constraint("default_charset", Charset, "source_profile_charset_valid"),
        ]

    def __str__(self) -> str:
        return self.name or f"{self.sending_application}^{self.sending_facility}"


class InboundStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    APPLIED = "applied", _("Applied")
    FAILED = "failed", _("Failed")
    REJECTED = "rejected", _("Rejected")
    DUPLICATE = "duplicate", _("Duplicate")


class InboundMessage(BaseModel):
    """Every inbound HL7 message or FHIR payload, stored raw before it is processed."""

    Status = InboundStatus

    protocol = models.CharField(_("protocol"), max_length=10, choices=Protocol.choices)
    transport = models.CharField(_("transport"), max_length=10, choices=Transport.choices)
    source = models.ForeignKey(
        SourceProfile,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("source"),
        db_index=False,  # covered by inbound_source_received
    )
    # "APP^FACILITY" as sent, kept even when no profile matched; duplicates are judged on it.
    sender = models.CharField(_("sender"), max_length=201, blank=True, default="")
    peer = models.CharField(_("peer address"), max_length=100, blank=True, default="")
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    control_id = models.CharField(_("control id"), max_length=199, blank=True, default="")
    message_type = models.CharField(_("message type"), max_length=40, blank=True, default="")
    version = models.CharField(_("version"), max_length=10, blank=True, default="")
    raw = models.BinaryField(_("raw message"))
    # Identifier values found in the message (PID-3, FHIR Patient.identifier), space separated, for search.
    patient_identifiers = models.CharField(_("patient identifiers"), max_length=500, blank=True, default="")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RECEIVED)
    error_code = models.CharField(_("error code"), max_length=20, blank=True, default="")
    error_location = models.CharField(_("error location"), max_length=60, blank=True, default="")
    error = models.TextField(_("error"), blank=True, default="")
    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbound_messages",
        verbose_name=_("patient"),
    )
    duplicate_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="redeliveries",
        verbose_name=_("duplicate of"),
        db_index=False,  # inbound_redeliveries holds only the duplicates
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")
        permissions = [
            ("reprocess_inboundmessage", _("Can reprocess inbound messages")),
            ("view_raw_inboundmessage", _("Can read raw inbound messages")),
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="inbound_status_received"),
            models.Index(fields=["source", "received_at"], name="inbound_source_received"),
            models.Index(fields=["control_id"], name="inbound_control_id"),
            # The console's per-source hourly statistics: a range scan over the last hours, index-only on PostgreSQL.
            models.Index(fields=["received_at"], include=["source", "status", "sender"], name="inbound_received_stats"),
            # Search of raw messages by one patient identifier.
            TokenArrayIndex(fields=["patient_identifiers"], name="inbound_identifier_tokens"),
            models.Index(fields=["duplicate_of"], condition=Q(duplicate_of__isnull=False), name="inbound_redeliveries"),
        ]
        constraints = [
            # One applied copy per sender and control id; redeliveries are stored as duplicates.
            models.UniqueConstraint(
                fields=["protocol", "sender", "control_id"],
                condition=~Q(status="duplicate") & ~Q(control_id=""),
                name="inbound_control_id_unique",
            ),
            _choices_constraint("protocol", Protocol, "inbound_protocol_valid"),
            _choices_constraint("transport", Transport, "inbound_transport_valid"),
            _choices_constraint("status", InboundStatus, "inbound_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.message_type} {self.control_id}"
