"""Segments: a filter spec (JSON) validated here and turned into one Patient queryset.

The spec is what `Segment.filters` stores and what later modules pass as the
audience of a follow-up plan or a campaign:

    {
      "visit_from": "2026-01-01", "visit_to": "2026-06-30",   # an encounter started in the period (local dates)
      "provinces": [...], "cities": [...], "districts": [...], # any of, exact names
      "sources": ["referral", ...],                           # PatientSource values
      "departments": ["NK", ...],                             # department codes: linked to the department
      "diagnosis_prefixes": ["I10", "E11"],                   # any diagnosis code starting with one of them,
      "diagnosis_system": "any",                              # within icd10 | tcm_disease | tcm_syndrome | any
      "spending_min": 1000, "spending_max": 5000,             # all-time spending (yuan), from PatientStats
      "age_min": 60, "age_max": 80,                           # whole years today in the hospital's time zone
      "sexes": ["female"], "tags": ["高血压"],                 # any of
      "last_visit_within_days": 365,                          # last visit at most this many days ago
      "no_visit_for_days": 180,                               # visited, but not in this many days
      "consent": {"purpose": "marketing", "channel": "sms", "granted": true},
      "rfm_groups": ["loyal"], "recency_scores": [4, 5], "frequency_scores": [...], "monetary_scores": [...],
      "include_deceased": false                               # deceased patients are left out unless true
    }

Every key is optional and the keys combine with AND; merged patients never
match. Each filter is one indexed or set-based condition (EXISTS / NOT EXISTS
subqueries, range lookups on indexed statistics); nothing loops over patients.
Statistics-based filters (spending, last visit, RFM) read `PatientStats`, which
the nightly recompute keeps current: a patient not yet computed matches only
the RFM group "none".
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hcrm.models import Department
from patients.models import (
    Channel,
    CodeSystem,
    Consent,
    ConsentPurpose,
    Diagnosis,
    Encounter,
    EncounterStatus,
    Patient,
    PatientDepartment,
    PatientSource,
    RfmGroup,
    Sex,
    Tag,
)
from patients.selectors.archive import CONSENT_DEFAULTS

DIAGNOSIS_ANY = "any"
LIST_LIMIT = 50
FILTER_KEYS = (
    "visit_from",
    "visit_to",
    "provinces",
    "cities",
    "districts",
    "sources",
    "departments",
    "diagnosis_prefixes",
    "diagnosis_system",
    "spending_min",
    "spending_max",
    "age_min",
    "age_max",
    "sexes",
    "tags",
    "last_visit_within_days",
    "no_visit_for_days",
    "consent",
    "rfm_groups",
    "recency_scores",
    "frequency_scores",
    "monetary_scores",
    "include_deceased",
)


def _names(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=LIST_LIMIT, **kwargs
    )


def _choices(choices, **kwargs) -> serializers.ListField:
    # The schema states the values inline: a named enum per list would duplicate the models' SexEnum, SourceEnum.
    schema = {"type": "array", "items": {"type": "string", "enum": [value for value, _label in choices]}}
    field_class = extend_schema_field(schema)(type("ChoiceListField", (serializers.ListField,), {}))
    return field_class(child=serializers.ChoiceField(choices=choices), required=False, max_length=LIST_LIMIT, **kwargs)


def _scores() -> serializers.ListField:
    return serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=5), required=False, max_length=5)


class ConsentFilterSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    channel = serializers.ChoiceField(choices=Channel.choices)
    granted = serializers.BooleanField(help_text=_("The effective decision: a recorded one, else the default."))


class SegmentFiltersSerializer(serializers.Serializer):
    """The filter spec of a segment; every key optional, keys combine with AND."""

    visit_from = serializers.DateField(required=False, help_text=_("An encounter started on or after this day."))
    visit_to = serializers.DateField(required=False, help_text=_("An encounter started on or before this day."))
    provinces = _names()
    cities = _names()
    districts = _names()
    sources = _choices(PatientSource.choices)
    departments = _names(help_text=_("Department codes: the patient is cared for by any of them."))
    diagnosis_prefixes = serializers.ListField(
        child=serializers.RegexField(r"^[A-Za-z0-9.\-]{1,32}$", error_messages={"invalid": _("Not a code prefix.")}),
        required=False,
        max_length=LIST_LIMIT,
        help_text=_("Any diagnosis whose code starts with one of these."),
    )
    diagnosis_system = serializers.ChoiceField(
        choices=[(DIAGNOSIS_ANY, _("Any code system")), *CodeSystem.choices], required=False
    )
    spending_min = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal(0), required=False)
    spending_max = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal(0), required=False)
    age_min = serializers.IntegerField(min_value=0, max_value=150, required=False)
    age_max = serializers.IntegerField(min_value=0, max_value=150, required=False)
    sexes = _choices(Sex.choices)
    tags = _names(help_text=_("Tag names: the patient carries any of them."))
    last_visit_within_days = serializers.IntegerField(min_value=0, max_value=36500, required=False)
    no_visit_for_days = serializers.IntegerField(min_value=1, max_value=36500, required=False)
    consent = ConsentFilterSerializer(required=False)
    rfm_groups = _choices(RfmGroup.choices)
    recency_scores = _scores()
    frequency_scores = _scores()
    monetary_scores = _scores()
    include_deceased = serializers.BooleanField(required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(FILTER_KEYS))
            if unknown:
                raise serializers.ValidationError({key: [_("Unknown filter.")] for key in unknown})
        return super().to_internal_value(data)

    def validate(self, attrs):
        errors = {}
        for low, high, message in (
            ("visit_from", "visit_to", _("The period ends before it starts.")),
            ("spending_min", "spending_max", _("The maximum is less than the minimum.")),
            ("age_min", "age_max", _("The maximum is less than the minimum.")),
        ):
            if attrs.get(low) is not None and attrs.get(high) is not None and attrs[low] > attrs[high]:
                errors[high] = [message]
        if self.context.get("check_references"):
            errors.update(_unknown_references(attrs))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _unknown_references(attrs: dict[str, Any]) -> dict[str, list[str]]:
    errors = {}
    for field, model, key in (("departments", Department, "code"), ("tags", Tag, "name")):
        wanted = set(attrs.get(field) or ())
        if wanted:
            known = set(model.objects.filter(**{f"{key}__in": wanted}).values_list(key, flat=True))
            missing = sorted(wanted - known)
            if missing:
                errors[field] = [_("Unknown: %(values)s.") % {"values": ", ".join(missing)}]
    return errors


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def segment_filters_clean(filters: Any, *, check_references: bool = True) -> dict[str, Any]:
    """The spec validated and in canonical form (empty keys dropped), ready to store; raises DRF ValidationError.

    With `check_references`, department codes and tag names must exist (checked when a segment is
    saved or previewed, not when a saved one is used: a tag renamed later simply matches nobody).
    """
    serializer = SegmentFiltersSerializer(data=filters, context={"check_references": check_references})
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    spec: dict[str, Any] = {}
    for key in FILTER_KEYS:
        value = data.get(key)
        # Absent, empty and default values are left out, so equal filters are stored equally.
        if value is None or value is False or value == [] or value == "" or value == DIAGNOSIS_ANY:
            continue
        if key in ("visit_from", "visit_to"):
            value = value.isoformat()
        elif key in ("spending_min", "spending_max"):
            value = int(value) if value == value.to_integral_value() else float(value)
        elif key == "diagnosis_prefixes":
            value = _unique(prefix.strip().upper() for prefix in value)
        elif key in ("provinces", "cities", "districts", "tags", "departments"):
            value = _unique(name.strip() for name in value if name.strip())
        elif key.endswith("_scores"):
            value = sorted({int(score) for score in value})
        elif key in ("sources", "sexes", "rfm_groups"):
            value = _unique(value)
        elif key == "consent":
            value = {"purpose": value["purpose"], "channel": value["channel"], "granted": value["granted"]}
        if value != []:
            spec[key] = value
    return spec


# --- The queryset --------------------------------------------------------------------------------------


def local_midnight(day: dt.date) -> dt.datetime:
    """The first moment of `day` in the hospital's time zone."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _consent_condition(purpose: str, channel: str, granted: bool) -> Q:
    # The effective decision is the recorded one if there is a row, else the hospital default:
    # when the wanted answer is the default, it is "no row says otherwise"; when not, "a row says so".
    decisions = Consent.objects.filter(patient=OuterRef("pk"), purpose=purpose, channel=channel)
    if CONSENT_DEFAULTS[purpose] == granted:
        return ~Q(Exists(decisions.filter(granted=not granted)))
    return Q(Exists(decisions.filter(granted=granted)))


def segment_patients(
    filters: dict[str, Any], *, patients: QuerySet[Patient] | None = None, today: dt.date | None = None
) -> QuerySet[Patient]:
    """The patients matching a filter spec, narrowed from `patients` (default: every active patient).

    Callers that show people pass `patients_visible_to(user)`; counting and audiences use the default.
    The spec's shape is checked (a malformed one raises ValidationError); references are not.
    """
    spec = segment_filters_clean(filters, check_references=False)
    today = today or timezone.localdate()
    queryset = patients if patients is not None else Patient.objects.all()
    conditions = Q(merged_into__isnull=True)
    if not spec.get("include_deceased"):
        conditions &= Q(is_deceased=False)
    for key, field in (("provinces", "province"), ("cities", "city"), ("districts", "district")):
        if key in spec:
            conditions &= Q(**{f"{field}__in": spec[key]})
    if "sources" in spec:
        conditions &= Q(source__in=spec["sources"])
    if "sexes" in spec:
        conditions &= Q(sex__in=spec["sexes"])
    if "age_min" in spec:
        conditions &= Q(birth_date__lte=years_before(today, spec["age_min"]))
    if "age_max" in spec:
        conditions &= Q(birth_date__gt=years_before(today, spec["age_max"] + 1))
    if "visit_from" in spec or "visit_to" in spec:
        encounters = Encounter.objects.filter(patient=OuterRef("pk")).exclude(status=EncounterStatus.CANCELLED)
        if "visit_from" in spec:
            encounters = encounters.filter(started_at__gte=local_midnight(dt.date.fromisoformat(spec["visit_from"])))
        if "visit_to" in spec:
            end = dt.date.fromisoformat(spec["visit_to"]) + dt.timedelta(days=1)
            encounters = encounters.filter(started_at__lt=local_midnight(end))
        conditions &= Q(Exists(encounters))
    if "departments" in spec:
        # The patient-department link, not encounters: it is what visibility uses, every visit
        # creates it, and its (department, patient) index answers without touching encounters.
        links = PatientDepartment.objects.filter(
            patient=OuterRef("pk"),
            department_id__in=Department.objects.filter(code__in=spec["departments"]).values("pk"),
        )
        conditions &= Q(Exists(links))
    if "diagnosis_prefixes" in spec:
        codes = Q()
        for prefix in spec["diagnosis_prefixes"]:
            codes |= Q(code__startswith=prefix)
        diagnoses = Diagnosis.objects.filter(codes, patient=OuterRef("pk"))
        if spec.get("diagnosis_system"):
            diagnoses = diagnoses.filter(system=spec["diagnosis_system"])
        conditions &= Q(Exists(diagnoses))
    if "tags" in spec:
        tagged = Patient.tags.through.objects.filter(patient_id=OuterRef("pk"), tag__name__in=spec["tags"])
        conditions &= Q(Exists(tagged))
    if "consent" in spec:
        conditions &= _consent_condition(**spec["consent"])
    conditions &= _stats_conditions(spec, today)
    return queryset.filter(conditions)


def _stats_conditions(spec: dict[str, Any], today: dt.date) -> Q:
    conditions = Q()
    if "spending_min" in spec:
        conditions &= Q(stats__spending_total__gte=Decimal(str(spec["spending_min"])))
    if "spending_max" in spec:
        conditions &= Q(stats__spending_total__lte=Decimal(str(spec["spending_max"])))
    if "last_visit_within_days" in spec:
        since = local_midnight(today - dt.timedelta(days=spec["last_visit_within_days"]))
        conditions &= Q(stats__last_visit_at__gte=since)
    if "no_visit_for_days" in spec:
        # At least N whole days since the last visit: its local date is on or before today - N.
        before = local_midnight(today - dt.timedelta(days=spec["no_visit_for_days"] - 1))
        conditions &= Q(stats__last_visit_at__lt=before)
    for key, field in (
        ("recency_scores", "recency_score"),
        ("frequency_scores", "frequency_score"),
        ("monetary_scores", "monetary_score"),
    ):
        if key in spec:
            conditions &= Q(**{f"stats__{field}__in": spec[key]})
    if "rfm_groups" in spec:
        groups = Q(stats__rfm_group__in=spec["rfm_groups"])
        if RfmGroup.NONE in spec["rfm_groups"]:
            groups |= Q(stats__isnull=True)  # registered since the last recompute: no visit counted yet
        conditions &= groups
    return conditions


def split_names(text: str) -> list[str]:
    """A typed list of names or codes: commas (also Chinese ones), enumeration commas or whitespace."""
    return [part for part in re.split(r"[,，、;；\s]+", text or "") if part]


def patient_id_batch_end(after_id: int, batch_size: int) -> int | None:
    """The last patient id of the next batch of `batch_size` ids after `after_id`; None when none is left."""
    ids = Patient.objects.filter(pk__gt=after_id).order_by("pk").values_list("pk", flat=True)
    last = ids[batch_size - 1 : batch_size].first()
    if last is not None:
        return last
    return ids.order_by("-pk").first()
