"""FHIR search parameters → indexed archive queries. Each parameter is a small function over a queryset."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from followups.fhir import CANONICAL_PREFIX, RESPONSE_STATUS_IN
from followups.models import QuestionnaireVersion
from integrations.fhir import codes
from integrations.fhir.inbound_map import DEFAULT_RULES, identifier_meaning
from integrations.fhir.outcome import FhirError
from patients.models import Patient, PatientIdentifier
from patients.selectors import SearchKind, patients_matching
from patients.validators import normalize_national_id, phone_search_key

PREFIXES = ("eq", "ge", "le", "gt", "lt")
DATE_VALUE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)?)?)?$")


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str  # FHIR SearchParamType
    documentation: str
    apply: Callable[[QuerySet, str], QuerySet]


def bad_value(name: str, value: str) -> FhirError:
    return FhirError.single(
        400,
        "value",
        _("Search parameter %(name)s: %(value)s is not valid here.") % {"name": name, "value": value},
        name,
    )


def date_range(name: str, value: str, *, dates_only: bool) -> tuple[str, dt.datetime | dt.date, dt.datetime | dt.date]:
    """`ge1974-12` → ("ge", start of December 1974, start of January 1975): the value's whole precision."""
    prefix = value[:2] if value[:2] in PREFIXES else "eq"
    text = value[2:] if value[:2] in PREFIXES else value
    if value[:2].isalpha() and value[:2] not in PREFIXES:
        raise bad_value(name, value)
    match = DATE_VALUE.match(text)
    if not match:
        raise bad_value(name, value)
    year, month, day, time = match.groups()
    try:
        if time:
            moment = dt.datetime.fromisoformat(text)
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
            start, end = moment, moment + dt.timedelta(seconds=1)
        else:
            start = dt.date(int(year), int(month or 1), int(day or 1))
            if day:
                end = start + dt.timedelta(days=1)
            elif month:
                end = dt.date(start.year + (start.month == 12), start.month % 12 + 1, 1)
            else:
                end = dt.date(start.year + 1, 1, 1)
    except ValueError:
        raise bad_value(name, value) from None
    if dates_only:
        if isinstance(start, dt.datetime):
            start, end = timezone.localtime(start).date(), timezone.localtime(start).date() + dt.timedelta(days=1)
    elif not isinstance(start, dt.datetime):
        start = timezone.make_aware(dt.datetime.combine(start, dt.time.min))
        end = timezone.make_aware(dt.datetime.combine(end, dt.time.min))
    return prefix, start, end


def date_filter(field: str, param: str, *, dates_only: bool = False) -> Callable[[QuerySet, str], QuerySet]:
    def apply(queryset: QuerySet, value: str, name: str = param) -> QuerySet:
        prefix, start, end = date_range(name, value, dates_only=dates_only)
        condition = {
            "eq": Q(**{f"{field}__gte": start, f"{field}__lt": end}),
            "ge": Q(**{f"{field}__gte": start}),
            "gt": Q(**{f"{field}__gte": end}),
            "le": Q(**{f"{field}__lt": end}),
            "lt": Q(**{f"{field}__lt": start}),
        }[prefix]
        return queryset.filter(condition)

    return apply


def _split(value: str) -> list[str]:
    return [part for part in value.split(",") if part]


# --- Patient ------------------------------------------------------------------------------------------


def assigned_identifier_term(value: str) -> tuple[str, str] | None:
    """(assigner, value) when `value` is one `system|value` term that `patient_identifier` looks up among
    the patients' identifiers (not a national ID or MRN system); None for anything else."""
    if "," in value or "|" not in value:
        return None
    system, _bar, identifier = value.rpartition("|")
    if not system or not identifier or system == codes.MRN_SYSTEM:
        return None
    if identifier_meaning({"system": system}, DEFAULT_RULES) == "national_id":
        return None
    return codes.assigner_for_system(system), identifier


def patient_identifier(queryset: QuerySet, value: str) -> QuerySet:
    """`system|value`, `|value` or `value`; several separated by commas match any."""
    condition = Q(pk__in=[])
    for term in _split(value):
        system, _bar, identifier = term.rpartition("|") if "|" in term else ("", "", term)
        if not identifier:
            raise bad_value("identifier", value)
        if system:
            meaning = identifier_meaning({"system": system}, DEFAULT_RULES)
            if meaning == "national_id":
                condition |= Q(national_id=normalize_national_id(identifier))
                continue
            if system == codes.MRN_SYSTEM:
                condition |= Q(mrn=identifier)
                continue
            holders = PatientIdentifier.objects.filter(assigner=codes.assigner_for_system(system), value=identifier)
        else:
            condition |= Q(mrn=identifier) | Q(national_id=identifier)
            holders = PatientIdentifier.objects.filter(value=identifier)
        condition |= Q(pk__in=list(holders.values_list("patient_id", flat=True)[:50]))
    return queryset.filter(condition)


def patient_name(queryset: QuerySet, value: str) -> QuerySet:
    kind = SearchKind.NAME if any("\u3400" <= char <= "\u9fff" for char in value) else SearchKind.PINYIN
    if kind == SearchKind.PINYIN and " " in value.strip():
        return queryset.filter(name__istartswith=value.strip())
    matched = patients_matching(queryset, value, kind)
    if kind == SearchKind.PINYIN:
        # Latin names ("Peter James Chalmers") are stored as written.
        return queryset.filter(Q(pk__in=matched.values("pk")) | Q(name__istartswith=value.strip()))
    return matched


def patient_family(queryset: QuerySet, value: str) -> QuerySet:
    """Chinese names start with the family name; Latin ones are stored given names first and end with it."""
    value = value.strip()
    if any("\u3400" <= char <= "\u9fff" for char in value):
        return queryset.filter(name__startswith=value)
    return queryset.filter(
        Q(name__iendswith=f" {value}") | Q(name__iexact=value) | Q(name_pinyin__startswith=value.lower())
    )


def patient_given(queryset: QuerySet, value: str) -> QuerySet:
    value = value.strip()
    if any("\u3400" <= char <= "\u9fff" for char in value):
        return queryset.filter(name__contains=value).exclude(name__startswith=value)
    return queryset.filter(Q(name__istartswith=f"{value} ") | Q(name__icontains=f" {value} "))


def patient_phone(queryset: QuerySet, value: str) -> QuerySet:
    key = phone_search_key(value)
    if key is None:
        raise bad_value("phone", value)
    return queryset.filter(Q(mobile=key) | Q(phone=key))


def patient_gender(queryset: QuerySet, value: str) -> QuerySet:
    sexes = []
    for term in _split(value):
        if term not in codes.GENDER_TO_SEX:
            raise bad_value("gender", value)
        sexes.append(codes.GENDER_TO_SEX[term])
    return queryset.filter(sex__in=sexes)


# --- Records of a patient -------------------------------------------------------------------------------


def patient_uuid_of(value: str, name: str) -> uuid.UUID:
    reference = value.rsplit("/", 1)[-1] if value.startswith(("Patient/", "http")) else value
    try:
        return uuid.UUID(reference)
    except ValueError:
        raise bad_value(name, value) from None


def record_patient(name: str) -> Callable[[QuerySet, str], QuerySet]:
    def apply(queryset: QuerySet, value: str) -> QuerySet:
        patient_id = Patient.objects.filter(uuid=patient_uuid_of(value, name)).values_list("pk", flat=True).first()
        return queryset.filter(patient_id=patient_id) if patient_id else queryset.none()

    return apply


def token_code(queryset: QuerySet, value: str) -> QuerySet:
    """`system|code` or `code`; the system is not checked beyond the code (archive codes carry their own)."""
    values = [term.rpartition("|")[2] for term in _split(value)]
    if not all(values):
        raise bad_value("code", value)
    return queryset.filter(code__in=values)


def encounter_status(queryset: QuerySet, value: str) -> QuerySet:
    statuses = []
    for term in _split(value):
        if term not in codes.ENCOUNTER_STATUS:
            raise bad_value("status", value)
        statuses.append(codes.ENCOUNTER_STATUS[term])
    return queryset.filter(status__in=statuses)


def _lastupdated(queryset: QuerySet, value: str) -> QuerySet:
    return date_filter("updated_at", "_lastUpdated")(queryset, value)


LAST_UPDATED = SearchParam(
    "_lastUpdated", "date", "When the resource last changed (prefixes eq, ge, le, gt, lt).", _lastupdated
)


def record_params(extra: list[SearchParam]) -> dict[str, SearchParam]:
    params = [
        SearchParam("patient", "reference", "The patient (Patient/id or id).", record_patient("patient")),
        SearchParam("subject", "reference", "The patient (Patient/id or id).", record_patient("subject")),
        *extra,
        LAST_UPDATED,
    ]
    return {param.name: param for param in params}


PATIENT_PARAMS = {
    param.name: param
    for param in [
        SearchParam(
            "identifier", "token", "system|value, or a value of any identifier, MRN or national ID.", patient_identifier
        ),
        SearchParam("name", "string", "Start of the name, in characters or pinyin.", patient_name),
        SearchParam("family", "string", "Family name.", patient_family),
        SearchParam("given", "string", "Given name.", patient_given),
        SearchParam(
            "birthdate",
            "date",
            "Birth date (prefixes eq, ge, le, gt, lt).",
            date_filter("birth_date", "birthdate", dates_only=True),
        ),
        SearchParam("phone", "token", "A phone or mobile number.", patient_phone),
        SearchParam("gender", "token", "male | female | other | unknown.", patient_gender),
        LAST_UPDATED,
    ]
}

ENCOUNTER_PARAMS = record_params(
    [
        SearchParam(
            "date", "date", "Start of the encounter (prefixes eq, ge, le, gt, lt).", date_filter("started_at", "date")
        ),
        SearchParam("status", "token", "planned | in-progress | finished | cancelled ...", encounter_status),
    ]
)
CONDITION_PARAMS = record_params([SearchParam("code", "token", "Diagnosis code (ICD-10 or GB/T 15657).", token_code)])
OBSERVATION_PARAMS = record_params(
    [
        SearchParam("code", "token", "Test code (LOINC or local).", token_code),
        SearchParam("date", "date", "When observed (prefixes eq, ge, le, gt, lt).", date_filter("observed_at", "date")),
    ]
)

# Result parameters every search takes, besides the resource's own.
RESULT_PARAMS = {
    "_count": "Page size (default 20, at most 100).",
    "_offset": "Rows to skip (at most 10,000); the next link carries it.",
    "_sort": "_lastUpdated or -_lastUpdated (the default).",
    "_format": "json or application/fhir+json.",
}

# --- Schedules, slots and appointments ------------------------------------------------------------------


def reference_uuid(value: str, name: str, *kinds: str) -> uuid.UUID:
    """`Kind/id`, a full URL ending in it, or a bare id; a reference to another type is refused."""
    text = value.strip()
    if "/" in text:
        kind, _slash, text = text.rstrip("/").rpartition("/")
        if kind.rsplit("/", 1)[-1] not in kinds:
            raise bad_value(name, value)
    try:
        return uuid.UUID(text)
    except ValueError:
        raise bad_value(name, value) from None


def by_reference(name: str, field: str, *kinds: str) -> Callable[[QuerySet, str], QuerySet]:
    """Several references separated by commas match any."""

    def apply(queryset: QuerySet, value: str) -> QuerySet:
        keys = [reference_uuid(term, name, *kinds) for term in _split(value)]
        if not keys:
            raise bad_value(name, value)
        return queryset.filter(**{f"{field}__in": keys})

    return apply


def schedule_active(queryset: QuerySet, value: str) -> QuerySet:
    if value not in ("true", "false"):
        raise bad_value("active", value)
    return queryset.filter(status="open") if value == "true" else queryset.exclude(status="open")


def slot_status(queryset: QuerySet, value: str) -> QuerySet:
    """free | busy | busy-unavailable, computed from the places taken across every channel."""
    terms = _split(value)
    if not terms or any(term not in codes.SLOT_STATUSES for term in terms):
        raise bad_value("status", value)
    queryset = queryset.alias(
        places_taken=F("taken_online") + F("taken_phone") + F("taken_window"),
        places=F("capacity_online") + F("capacity_phone") + F("capacity_window"),
    )
    open_session = Q(schedule__status="open")
    conditions = {
        "free": open_session & Q(places_taken__lt=F("places")),
        "busy": open_session & Q(places_taken__gte=F("places")),
        "busy-unavailable": ~open_session,
    }
    condition = Q(pk__in=[])
    for term in terms:
        condition |= conditions[term]
    return queryset.filter(condition)


def appointment_status(queryset: QuerySet, value: str) -> QuerySet:
    statuses: list[str] = []
    for term in _split(value):
        if term not in codes.APPOINTMENT_STATUS:
            raise bad_value("status", value)
        statuses += codes.APPOINTMENT_STATUS[term]
    if not statuses:
        raise bad_value("status", value)
    return queryset.filter(status__in=statuses)


def _params(*params: SearchParam) -> dict[str, SearchParam]:
    return {param.name: param for param in params}


SCHEDULE_PARAMS = _params(
    SearchParam(
        "actor",
        "reference",
        "The doctor (Practitioner/id as in Schedule.actor).",
        by_reference("actor", "doctor__uuid", "Practitioner"),
    ),
    SearchParam(
        "date", "date", "Start of the session (prefixes eq, ge, le, gt, lt).", date_filter("starts_at", "date")
    ),
    SearchParam("active", "token", "true: open sessions; false: stopped ones (停诊).", schedule_active),
    LAST_UPDATED,
)
SLOT_PARAMS = _params(
    SearchParam(
        "schedule",
        "reference",
        "The clinic session (Schedule/id).",
        by_reference("schedule", "schedule__uuid", "Schedule"),
    ),
    SearchParam("start", "date", "Start of the slot (prefixes eq, ge, le, gt, lt).", date_filter("starts_at", "start")),
    SearchParam("status", "token", "free | busy | busy-unavailable.", slot_status),
    LAST_UPDATED,
)
APPOINTMENT_PARAMS = _params(
    SearchParam("patient", "reference", "The patient (Patient/id or id).", record_patient("patient")),
    SearchParam(
        "practitioner",
        "reference",
        "The doctor (Practitioner/id as in the participant).",
        by_reference("practitioner", "doctor__uuid", "Practitioner"),
    ),
    SearchParam(
        "date",
        "date",
        "Start of the appointment (prefixes eq, ge, le, gt, lt).",
        date_filter("slot__starts_at", "date"),
    ),
    SearchParam("status", "token", "pending | booked | arrived | noshow | cancelled.", appointment_status),
    SearchParam("slot", "reference", "The slot (Slot/id).", by_reference("slot", "slot__uuid", "Slot")),
    LAST_UPDATED,
)

# --- Questionnaires and responses -----------------------------------------------------------------------


def questionnaire_url(name: str, field: str) -> Callable[[QuerySet, str], QuerySet]:
    """A canonical url, optionally `|version`; several separated by commas match any."""

    def apply(queryset: QuerySet, value: str) -> QuerySet:
        condition = Q(pk__in=[])
        for term in _split(value):
            url, _bar, version = term.partition("|")
            if not url.startswith(CANONICAL_PREFIX) or (version and not version.isdigit()):
                raise bad_value(name, value)
            term_condition = Q(**{f"{field}questionnaire__code": url[len(CANONICAL_PREFIX) :]})
            if version:
                term_condition &= Q(**{f"{field}number": int(version)})
            condition |= term_condition
        return queryset.filter(condition)

    return apply


def questionnaire_name(queryset: QuerySet, value: str) -> QuerySet:
    """The computable name is made from the code: match the code, ignoring case and separators."""
    wanted = re.sub(r"[^a-z0-9]", "", value.lower())
    if not wanted:
        raise bad_value("name", value)
    codes = [
        code
        for code in queryset.values_list("questionnaire__code", flat=True).distinct()
        if re.sub(r"[^a-z0-9]", "", code.lower()).startswith(wanted)
    ]
    return queryset.filter(questionnaire__code__in=codes)


def questionnaire_title(queryset: QuerySet, value: str) -> QuerySet:
    return queryset.filter(Q(questionnaire__title__icontains=value) | Q(questionnaire__title_en__icontains=value))


def questionnaire_status(queryset: QuerySet, value: str) -> QuerySet:
    """A version that is no longer current is retired, whatever its questionnaire's status."""
    terms = _split(value)
    if not terms or any(term not in ("draft", "active", "retired") for term in terms):
        raise bad_value("status", value)
    current = Q(questionnaire__current_version=F("pk"))
    condition = Q(pk__in=[])
    for term in terms:
        condition |= current & Q(questionnaire__status=term)
        if term == "retired":
            condition |= ~current
    return queryset.filter(condition)


def response_status(queryset: QuerySet, value: str) -> QuerySet:
    statuses = []
    for term in _split(value):
        if term not in RESPONSE_STATUS_IN:
            raise bad_value("status", value)
        statuses.append(RESPONSE_STATUS_IN[term])
    if not statuses:
        raise bad_value("status", value)
    return queryset.filter(status__in=statuses)


def response_questionnaire(queryset: QuerySet, value: str) -> QuerySet:
    """`Questionnaire/id` (one version) or its canonical url, optionally `|version`."""
    condition = Q(pk__in=[])
    for term in _split(value):
        if term.startswith(CANONICAL_PREFIX):
            condition |= Q(version__in=questionnaire_url("questionnaire", "")(QuestionnaireVersion.objects, term))
        else:
            condition |= Q(version__uuid=reference_uuid(term, "questionnaire", "Questionnaire"))
    return queryset.filter(condition)


QUESTIONNAIRE_PARAMS = _params(
    SearchParam(
        "url",
        "uri",
        f"The canonical url ({CANONICAL_PREFIX}<code>), optionally |version.",
        questionnaire_url("url", ""),
    ),
    SearchParam("name", "string", "Start of the computable name (from the code).", questionnaire_name),
    SearchParam("title", "string", "Part of the title, in Chinese or English.", questionnaire_title),
    SearchParam(
        "status", "token", "draft | active | retired (versions no longer current are retired).", questionnaire_status
    ),
    LAST_UPDATED,
)
RESPONSE_PARAMS = record_params(
    [
        SearchParam(
            "questionnaire",
            "reference",
            "The version answered: Questionnaire/id, or the canonical url, optionally |version.",
            response_questionnaire,
        ),
        SearchParam("status", "token", "in-progress | completed.", response_status),
        SearchParam(
            "authored",
            "date",
            "When the response was completed (prefixes eq, ge, le, gt, lt).",
            date_filter("completed_at", "authored"),
        ),
    ]
)
