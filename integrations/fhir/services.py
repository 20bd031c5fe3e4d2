"""FHIR writes: store every payload raw, validate, map and apply it through the archive's services.

A transaction Bundle is applied in one database transaction (any entry failing → nothing written);
a batch applies each entry on its own. Entries of resource types the archive does not keep
(Organization, Claim, ...) and Conditions coded only in systems it does not keep are reported as
skipped with a warning, not refused: see docs/fhir.md for why.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError as PydanticValidationError

from hcrm.audit import audit_acting_as
from hcrm.models import Department, User
from integrations.fhir import inbound_map
from integrations.fhir.codes import assigner_for_system
from integrations.fhir.inbound_map import MappingError, ProfileRules, Unsupported
from integrations.fhir.outcome import FhirError, Issue, validation_issues
from integrations.fhir.registry import RESOURCES, SYSTEM_PERMISSION_READ, SYSTEM_PERMISSION_WRITE
from integrations.inbound import inbound_finish, inbound_store
from integrations.models import InboundMessage, SourceProfile
from patients.models import Encounter, Patient, PatientIdentifier, PatientSource
from patients.services import record_create, record_update
from patients.services.identity import IdentifierInput, patient_match_or_create

STORED_TYPES = frozenset(RESOURCES)
PATIENT_FIELD_ELEMENTS = {
    "name": "name",
    "sex": "gender",
    "birth_date": "birthDate",
    "national_id": "identifier",
    "mrn": "identifier",
    "mobile": "telecom",
    "phone": "telecom",
    "email": "telecom",
    "postal_code": "address",
    "deceased_date": "deceased",
}


@dataclass(frozen=True)
class FhirCaller:
    """Who is writing: a member of staff or another system; `source` is recorded as the records' source system."""

    principal: Any
    source: str

    @property
    def actor(self):
        return self.principal if isinstance(self.principal, User) else None

    @property
    def is_system(self) -> bool:
        return not isinstance(self.principal, User)

    def may_write(self, resource_type: str) -> bool:
        if self.principal.has_perm(SYSTEM_PERMISSION_WRITE):
            return True
        return self.is_system is False and self.principal.has_perms(RESOURCES[resource_type].write_permissions)


def caller_for(principal) -> FhirCaller:
    key = getattr(principal, "key", None)
    if key is not None:
        return FhirCaller(principal, (key.source_system or f"fhir:{key.name}")[:64])
    return FhirCaller(principal, "fhir")


def source_profile_for(source: str) -> SourceProfile:
    profile, _created = SourceProfile.objects.get_or_create(
        protocol="fhir", sending_application=source[:100], sending_facility="", defaults={"name": source[:100]}
    )
    return profile


# --- Planning ------------------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One write asked for: a bundle entry, or the single resource of POST/PUT Patient."""

    index: int | None
    method: str
    url: str
    resource: dict | None
    full_url: str = ""
    if_none_exist: str = ""
    issues: list[Issue] = field(default_factory=list)
    skipped: str = ""

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]" if self.index is not None else self.resource_type

    @property
    def resource_path(self) -> str:
        return f"{self.path}.resource" if self.index is not None else self.resource_type

    @property
    def resource_type(self) -> str:
        return (self.resource or {}).get("resourceType", "")

    @property
    def url_target(self) -> tuple[str, str, str]:
        """(type, id, query) of `request.url`: `Patient/123` → id, `Patient?identifier=...` → query."""
        path, _question, query = self.url.strip("/").partition("?")
        kind, _slash, resource_id = path.partition("/")
        return kind, resource_id, query


def entry_plan(index: int | None, raw: Any) -> Entry:
    """Check the shape of one bundle entry; problems are recorded on it, not raised."""
    raw = raw if isinstance(raw, dict) else {}
    request = raw.get("request") or {}
    resource = raw.get("resource")
    entry = Entry(
        index=index,
        method=(request.get("method") or "").upper(),
        url=request.get("url") or "",
        resource=resource if isinstance(resource, dict) else None,
        full_url=raw.get("fullUrl") or "",
        if_none_exist=request.get("ifNoneExist") or "",
    )
    if not request:
        entry.issues.append(
            Issue("error", "required", _("A transaction or batch entry needs a request."), (f"{entry.path}.request",))
        )
        return entry
    if entry.method not in ("POST", "PUT") or "$" in entry.url:
        entry.issues.append(
            Issue(
                "error",
                "not-supported",
                _("Only POST and PUT entries are accepted; %(method)s %(url)s is not supported.")
                % {"method": entry.method or "-", "url": entry.url},
                (f"{entry.path}.request",),
            )
        )
        return entry
    if entry.resource is None:
        entry.issues.append(Issue("error", "required", _("This entry has no resource."), (f"{entry.path}.resource",)))
        return entry
    kind, resource_id, query = entry.url_target
    if kind != entry.resource_type:
        entry.issues.append(
            Issue(
                "error",
                "invalid",
                _("request.url names %(url)s but the resource is a %(type)s.")
                % {"url": kind, "type": entry.resource_type},
                (f"{entry.path}.request.url",),
            )
        )
        return entry
    if entry.resource_type not in STORED_TYPES:
        entry.skipped = _("%(type)s resources are not kept by this archive; the entry was skipped.") % {
            "type": entry.resource_type
        }
        return entry
    if entry.method == "POST" and (resource_id or query):
        entry.issues.append(
            Issue("error", "invalid", _("POST goes to the resource type alone."), (f"{entry.path}.request.url",))
        )
    if entry.method == "PUT" and not (resource_id or query):
        entry.issues.append(
            Issue("error", "invalid", _("PUT needs an id or a search."), (f"{entry.path}.request.url",))
        )
    if entry.method == "PUT" and query and entry.resource_type != "Patient":
        entry.issues.append(
            Issue(
                "error",
                "not-supported",
                _("Conditional update is supported for Patient only."),
                (f"{entry.path}.request.url",),
            )
        )
    if entry.if_none_exist and entry.resource_type != "Patient":
        entry.issues.append(
            Issue(
                "error",
                "not-supported",
                _("Conditional create is supported for Patient only."),
                (f"{entry.path}.request.ifNoneExist",),
            )
        )
    if not entry.issues:
        try:
            get_fhir_model_class(entry.resource_type).model_validate(entry.resource)
        except PydanticValidationError as error:
            entry.issues.extend(validation_issues(error, entry.resource_path))
    return entry


# --- Applying ---------------------------------------------------------------------------------------------------


class EntryFailed(Exception):
    def __init__(self, status: int, issue: Issue) -> None:
        super().__init__(issue.diagnostics)
        self.status = status
        self.issue = issue


@dataclass
class EntryResult:
    status: str
    instance: Any = None
    resource_type: str = ""
    issues: list[Issue] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        from integrations.fhir.outbound_map import instant
        from integrations.fhir.outcome import operation_outcome

        response: dict[str, Any] = {"status": self.status}
        if self.instance is not None:
            response["location"] = f"{self.resource_type}/{self.instance.uuid}"
            response["lastModified"] = instant(self.instance.updated_at)
        if self.issues:
            response["outcome"] = operation_outcome(self.issues)
        return response


class Applier:
    """Applies entries for one caller; remembers what each entry became so references between them resolve."""

    def __init__(self, caller: FhirCaller, rules: ProfileRules, *, remote_system: str = "") -> None:
        self.caller = caller
        self.rules = rules
        # Pull sync: the remote's Patient ids are kept as identifiers under this system, so its references resolve.
        self.remote_system = remote_system
        self.targets: dict[str, Any] = {}
        self.patients: set[int] = set()

    def remember(self, entry: Entry, instance) -> None:
        keys = [entry.full_url] if entry.full_url else []
        if (entry.resource or {}).get("id"):
            keys.append(f"{entry.resource_type}/{entry.resource['id']}")
        kind, resource_id, _query = entry.url_target
        if resource_id:
            keys.append(f"{kind}/{resource_id}")
        for key in keys:
            self.targets[key] = instance

    def apply(self, entry: Entry) -> EntryResult:
        if entry.skipped:
            return EntryResult("200 OK", issues=[Issue("warning", "not-supported", entry.skipped, (entry.path,))])
        if not self.caller.may_write(entry.resource_type):
            raise EntryFailed(
                403,
                Issue(
                    "error",
                    "forbidden",
                    _("You may not write %(type)s resources.") % {"type": entry.resource_type},
                    (entry.path,),
                ),
            )
        if entry.resource_type == "Patient":
            return self.apply_patient(entry)
        return self.apply_record(entry)

    # Patients go through the identity service, whatever the interaction.

    def apply_patient(self, entry: Entry) -> EntryResult:
        try:
            demographics, warnings = inbound_map.patient_demographics(entry.resource, self.rules)
        except MappingError as error:
            raise EntryFailed(
                400, Issue("error", error.code, error.message, (f"{entry.resource_path}.{error.path}",))
            ) from None
        warnings = [warning.under(entry.resource_path) for warning in warnings]
        if self.remote_system and entry.resource.get("id"):
            demographics.identifiers.append(
                IdentifierInput(
                    kind="other", value=entry.resource["id"][:64], assigner=assigner_for_system(self.remote_system)
                )
            )
        _kind, resource_id, query = entry.url_target
        target = None
        if entry.method == "POST" and entry.if_none_exist:
            found = self.patients_by_query(entry.if_none_exist, f"{entry.path}.request.ifNoneExist")
            if found is not None:
                self.remember(entry, found)
                return EntryResult("200 OK", found, "Patient", warnings)
        elif entry.method == "PUT" and query:
            target = self.patients_by_query(query, f"{entry.path}.request.url")
        elif entry.method == "PUT":
            target = self.patient_by_id(resource_id, f"{entry.path}.request.url")
        if target is not None:
            demographics.mrn = target.mrn
            demographics.cleared = inbound_map.cleared_by_replace(demographics)
        try:
            outcome = patient_match_or_create(
                demographics=demographics,
                source=PatientSource.FHIR_IMPORT,
                actor=self.caller.actor,
                system=self.caller.source,
            )
        except ValidationError as error:
            raise EntryFailed(400, self.patient_error_issue(error, entry)) from None
        if target is not None and outcome.patient.pk != target.pk:
            raise EntryFailed(
                409,
                Issue(
                    "error",
                    "conflict",
                    _("These identifiers belong to another patient (Patient/%(other)s).")
                    % {"other": outcome.patient.uuid},
                    (f"{entry.resource_path}.identifier",),
                ),
            )
        for name, reason in sorted((getattr(outcome, "skipped", None) or {}).items()):
            element = PATIENT_FIELD_ELEMENTS.get(
                name.split(".")[0], "identifier" if name.startswith("identifiers") else ""
            )
            path = f"{entry.resource_path}.{element}" if element else entry.resource_path
            warnings.append(Issue("warning", "value", _("Not stored: %(reason)s") % {"reason": reason}, (path,)))
        if outcome.candidates:
            warnings.append(
                Issue(
                    "information",
                    "informational",
                    _("A possible duplicate was queued for review."),
                    (entry.resource_path,),
                )
            )
        self.remember(entry, outcome.patient)
        self.patients.add(outcome.patient.pk)
        return EntryResult("201 Created" if outcome.created else "200 OK", outcome.patient, "Patient", warnings)

    def patient_error_issue(self, error: ValidationError, entry: Entry) -> Issue:
        if hasattr(error, "error_dict"):
            field_name, errors = next(iter(error.error_dict.items()))
            element = PATIENT_FIELD_ELEMENTS.get(field_name, "")
            path = f"{entry.resource_path}.{element}" if element else entry.resource_path
            return Issue("error", "invalid", " ".join(errors[0].messages), (path,))
        return Issue("error", "invalid", " ".join(error.messages), (entry.resource_path,))

    def patients_by_query(self, query: str, path: str) -> Patient | None:
        """The one patient a conditional `identifier=system|value` search finds, or None; several → 412."""
        from integrations.fhir.search import patient_identifier

        params = parse_qsl(query, keep_blank_values=True)
        if not params or any(name != "identifier" for name, _value in params):
            raise EntryFailed(
                400, Issue("error", "not-supported", _("Only identifier=system|value is supported here."), (path,))
            )
        patients = Patient.objects.filter(merged_into__isnull=True)
        for _name, value in params:
            patients = patient_identifier(patients, value)
        found = list(patients.order_by("pk")[:2])
        if len(found) > 1:
            raise EntryFailed(412, Issue("error", "multiple-matches", _("More than one patient matches."), (path,)))
        return found[0] if found else None

    def patient_by_id(self, resource_id: str, path: str) -> Patient:
        patient = self.lookup_patient(resource_id)
        if patient is None:
            raise EntryFailed(
                404,
                Issue(
                    "error",
                    "not-found",
                    _("No patient Patient/%(id)s; ids are assigned by this server (use POST or a conditional update).")
                    % {"id": resource_id},
                    (path,),
                ),
            )
        if patient.merged_into_id:
            raise EntryFailed(
                409,
                Issue(
                    "error",
                    "conflict",
                    _("This patient was merged into Patient/%(id)s.") % {"id": patient.merged_into.uuid},
                    (path,),
                ),
            )
        return patient

    def lookup_patient(self, resource_id: str) -> Patient | None:
        try:
            key = uuid.UUID(resource_id)
        except ValueError:
            return None
        from integrations.fhir.reads import patients_readable

        return patients_readable(self.caller.principal, include_merged=True).filter(uuid=key).first()

    # Clinical records are upserted on (source system, resource id).

    def apply_record(self, entry: Entry) -> EntryResult:
        spec = RESOURCES[entry.resource_type]
        try:
            mapped = inbound_map.CLINICAL_MAPPERS[entry.resource_type](entry.resource, self.rules)
        except Unsupported as error:
            return EntryResult(
                "200 OK",
                issues=[
                    Issue(
                        "warning",
                        "not-supported",
                        f"{error.message} " + _("The entry was skipped."),
                        (f"{entry.resource_path}.{error.path}",),
                    )
                ],
            )
        except MappingError as error:
            raise EntryFailed(
                400, Issue("error", error.code, error.message, (f"{entry.resource_path}.{error.path}",))
            ) from None
        patient = self.resolve_patient(mapped.subject, f"{entry.resource_path}.{mapped.subject_path}")
        fields = dict(mapped.fields)
        if mapped.encounter:
            encounter = self.resolve_encounter(mapped.encounter, f"{entry.resource_path}.{mapped.encounter_path}")
            if encounter.patient_id != patient.pk:
                raise EntryFailed(
                    400,
                    Issue(
                        "error",
                        "invalid",
                        _("This encounter belongs to another patient."),
                        (f"{entry.resource_path}.encounter",),
                    ),
                )
            fields["encounter"] = encounter
        elif mapped.encounter_path:
            fields["encounter"] = None
        department_code = fields.pop("department_code", None)
        if department_code is not None:
            fields["department"] = Department.objects.filter(code=department_code).first() if department_code else None
        external_id = self.external_id(entry)
        existing = None
        if external_id:
            existing = spec.model.objects.filter(source_system=self.caller.source, external_id=external_id).first()
        try:
            if existing is None:
                data = {
                    **mapped.create_defaults,
                    **fields,
                    "source_system": self.caller.source,
                    "external_id": external_id,
                }
                record = record_create(actor=self.caller.actor, model=spec.model, patient=patient, data=data)
                status = "201 Created"
            else:
                if existing.patient_id != patient.pk:
                    raise EntryFailed(
                        409,
                        Issue(
                            "error",
                            "conflict",
                            _("%(type)s/%(id)s from this source belongs to another patient.")
                            % {"type": entry.resource_type, "id": external_id},
                            (f"{entry.resource_path}.{mapped.subject_path}",),
                        ),
                    )
                changed = {name: value for name, value in fields.items() if getattr(existing, name) != value}
                record = record_update(actor=self.caller.actor, record=existing, data=changed) if changed else existing
                status = "200 OK"
        except ValidationError as error:
            messages = "; ".join(f"{name}: {' '.join(e.messages)}" for name, e in _error_items(error))
            raise EntryFailed(400, Issue("error", "invalid", messages, (entry.resource_path,))) from None
        self.remember(entry, record)
        self.patients.add(patient.pk)
        return EntryResult(status, record, entry.resource_type, [w.under(entry.resource_path) for w in mapped.warnings])

    def external_id(self, entry: Entry) -> str | None:
        _kind, resource_id, _query = entry.url_target
        if entry.method == "PUT" and resource_id:
            return resource_id[:128]
        if (entry.resource or {}).get("id"):
            return entry.resource["id"][:128]
        if entry.full_url.startswith("urn:uuid:"):
            return entry.full_url[len("urn:uuid:") :][:128]
        return None

    def resolve(self, reference: str, path: str, kind: str):
        if not reference:
            raise EntryFailed(400, Issue("error", "required", _("A reference is required here."), (path,)))
        if reference in self.targets:
            return self.targets[reference]
        if reference.startswith("urn:"):
            raise EntryFailed(
                400,
                Issue("error", "not-found", _("%(ref)s is not an entry of this bundle.") % {"ref": reference}, (path,)),
            )
        parts = reference.rstrip("/").split("/")
        if len(parts) < 2 or parts[-2] != kind:
            raise EntryFailed(
                400, Issue("error", "invalid", _("Expected a reference to a %(kind)s.") % {"kind": kind}, (path,))
            )
        key = f"{parts[-2]}/{parts[-1]}"
        if key in self.targets:
            return self.targets[key]
        return parts[-1]

    def resolve_patient(self, reference: str, path: str) -> Patient:
        target = self.resolve(reference, path, "Patient")
        if isinstance(target, Patient):
            return target
        if not isinstance(target, str):
            raise EntryFailed(400, Issue("error", "invalid", _("Expected a reference to a Patient."), (path,)))
        patient = self.lookup_patient(target)
        if patient is None and self.remote_system:
            holder = (
                PatientIdentifier.objects.filter(
                    kind="other", assigner=assigner_for_system(self.remote_system), value=target[:64]
                )
                .select_related("patient")
                .first()
            )
            patient = holder.patient if holder else None
        if patient is None:
            raise EntryFailed(404, Issue("error", "not-found", _("No patient %(ref)s.") % {"ref": reference}, (path,)))
        while patient.merged_into_id:
            patient = patient.merged_into
        return patient

    def resolve_encounter(self, reference: str, path: str) -> Encounter:
        target = self.resolve(reference, path, "Encounter")
        if isinstance(target, Encounter):
            return target
        if not isinstance(target, str):
            raise EntryFailed(400, Issue("error", "invalid", _("Expected a reference to an Encounter."), (path,)))
        encounters = Encounter.objects.all()
        try:
            found = encounters.filter(uuid=uuid.UUID(target)).first()
        except ValueError:
            found = None
        found = found or encounters.filter(source_system=self.caller.source, external_id=target).first()
        if found is None:
            raise EntryFailed(
                404, Issue("error", "not-found", _("No encounter %(ref)s.") % {"ref": reference}, (path,))
            )
        return found


def _error_items(error: ValidationError):
    if hasattr(error, "error_dict"):
        return [(name, ValidationError(errors)) for name, errors in error.error_dict.items()]
    return [("", error)]


# Patients first, then encounters, so references between entries resolve whatever their order.
APPLY_ORDER = {"Patient": 0, "Encounter": 1}


def _ordered(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda entry: (APPLY_ORDER.get(entry.resource_type, 2), entry.index or 0))


def transaction_apply(*, entries: list[Entry], caller: FhirCaller, rules: ProfileRules) -> tuple[dict, set[int]]:
    """All entries or none: the first failing entry rolls everything back."""
    issues = [issue for entry in entries for issue in entry.issues]
    if issues:
        raise FhirError(400, issues)
    applier = Applier(caller, rules)
    results: dict[int, EntryResult] = {}
    try:
        with transaction.atomic():
            for entry in _ordered(entries):
                results[entry.index] = applier.apply(entry)
    except EntryFailed as failure:
        raise FhirError(failure.status if failure.status != 404 else 400, [failure.issue], applying=True) from None
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [{"response": results[entry.index].response()} for entry in entries],
    }
    return bundle, applier.patients


def batch_apply(*, entries: list[Entry], caller: FhirCaller, rules: ProfileRules) -> tuple[dict, set[int]]:
    """Each entry on its own; the response says for each whether it was applied."""
    from integrations.fhir.outcome import operation_outcome

    applier = Applier(caller, rules)
    responses: dict[int, dict] = {}
    for entry in _ordered(entries):
        if entry.issues:
            responses[entry.index] = {"status": "400 Bad Request", "outcome": operation_outcome(entry.issues)}
            continue
        try:
            with transaction.atomic():
                responses[entry.index] = applier.apply(entry).response()
        except EntryFailed as failure:
            responses[entry.index] = {
                "status": f"{failure.status} {_STATUS_TEXT.get(failure.status, '')}".strip(),
                "outcome": operation_outcome([failure.issue]),
            }
    bundle = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [{"response": responses[entry.index]} for entry in entries],
    }
    return bundle, applier.patients


_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 412: "Precondition Failed"}


# --- The ways in ---------------------------------------------------------------------------------------------------


@dataclass
class Received:
    """What to answer: HTTP status, the JSON body, and for single-resource writes the stored patient."""

    status: int
    body: dict
    message: InboundMessage
    patient: Patient | None = None


def _load_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FhirError.single(
            400, "structure", _("The body is not valid JSON: %(error)s") % {"error": error}
        ) from None


def _identifier_values(data: Any) -> str:
    values = []
    resources = [data] if isinstance(data, dict) else []
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        resources = [entry.get("resource") or {} for entry in data.get("entry") or () if isinstance(entry, dict)]
    for resource in resources:
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            values += [
                str(i.get("value")) for i in resource.get("identifier") or () if isinstance(i, dict) and i.get("value")
            ]
    return " ".join(dict.fromkeys(values))[:500]


def _message_type(data: Any, interaction: str) -> str:
    if not isinstance(data, dict):
        return interaction
    if data.get("resourceType") == "Bundle":
        return f"Bundle/{data.get('type', '')}"[:40]
    return f"{data.get('resourceType', '')}/{interaction}"[:40]


def fhir_receive(
    *,
    raw: bytes,
    caller: FhirCaller,
    interaction: str = "bundle",
    resource_type: str = "",
    url: str = "",
    if_none_exist: str = "",
    transport: str = "http",
    peer: str = "",
) -> Received:
    """Store a FHIR payload raw (committed on its own), then apply it; every outcome is recorded on the message.

    `interaction` is `bundle` (POST [base]), `create` (POST [type]) or `update` (PUT [type]/[id] or [type]?query).
    """
    try:
        data = _load_json(raw)
    except FhirError:
        data = None
    profile = source_profile_for(caller.source)
    message = inbound_store(
        protocol="fhir",
        transport=transport,
        raw=raw,
        sender=caller.source,
        source=profile,
        peer=peer,
        message_type=_message_type(data, interaction),
        patient_identifiers=_identifier_values(data),
    )
    return fhir_process(
        message=message,
        caller=caller,
        interaction=interaction,
        resource_type=resource_type,
        url=url,
        if_none_exist=if_none_exist,
        profile=profile,
    )


def fhir_process(
    *,
    message: InboundMessage,
    caller: FhirCaller,
    interaction: str,
    resource_type: str = "",
    url: str = "",
    if_none_exist: str = "",
    profile: SourceProfile | None = None,
) -> Received:
    """Apply a stored FHIR payload and record the outcome (used on receipt and on reprocessing)."""
    rules = inbound_map.rules_from_profile(profile or message.source or source_profile_for(caller.source))
    try:
        data = _load_json(bytes(message.raw))
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise FhirError.single(400, "structure", _("The body is not a FHIR resource."))
        if interaction == "bundle":
            status, body, patients = _bundle(data, caller, rules)
            patient = None
        else:
            status, body, patient = _single(data, caller, rules, interaction, resource_type, url, if_none_exist)
            patients = {patient.pk}
    except FhirError as error:
        location = error.issues[0].expression[0] if error.issues and error.issues[0].expression else ""
        # Refused as sent → rejected; refused while applying (unknown reference, conflict) → failed, reprocessable.
        state = InboundMessage.Status.FAILED if error.applying else InboundMessage.Status.REJECTED
        inbound_finish(
            message=message, status=state, error_code=str(error.status), error_location=location, error=str(error)
        )
        from integrations.fhir.outcome import operation_outcome

        return Received(error.status, operation_outcome(error.issues), message)
    except Exception as error:
        inbound_finish(message=message, status=InboundMessage.Status.FAILED, error_code="500", error=repr(error)[:2000])
        raise
    only = Patient.objects.filter(pk=next(iter(patients))).first() if len(patients) == 1 else None
    inbound_finish(message=message, status=InboundMessage.Status.APPLIED, patient=only)
    return Received(status, body, message, patient)


def _bundle(data: dict, caller: FhirCaller, rules: ProfileRules) -> tuple[int, dict, set[int]]:
    if data.get("resourceType") != "Bundle":
        raise FhirError.single(400, "invalid", _("POST to the base takes a Bundle."), "resourceType")
    kind = data.get("type")
    if kind not in ("transaction", "batch"):
        raise FhirError.single(
            400, "invalid", _("Only transaction and batch bundles are accepted here."), "Bundle.type"
        )
    shell = {key: value for key, value in data.items() if key != "entry"}
    shell["entry"] = [
        {key: value for key, value in entry.items() if key != "resource"} if isinstance(entry, dict) else entry
        for entry in data.get("entry") or ()
    ]
    try:
        get_fhir_model_class("Bundle").model_validate(shell)
    except PydanticValidationError as error:
        raise FhirError(400, validation_issues(error, "Bundle")) from None
    entries = [entry_plan(index, raw) for index, raw in enumerate(data.get("entry") or ())]
    if kind == "transaction":
        body, patients = transaction_apply(entries=entries, caller=caller, rules=rules)
    else:
        body, patients = batch_apply(entries=entries, caller=caller, rules=rules)
    return 200, body, patients


def _single(data, caller, rules, interaction, resource_type, url, if_none_exist) -> tuple[int, dict, Patient]:
    if data.get("resourceType") != resource_type:
        raise FhirError.single(
            400, "invalid", _("Expected a %(type)s resource.") % {"type": resource_type}, "resourceType"
        )
    entry = entry_plan(
        None,
        {
            "resource": data,
            "request": {
                "method": "POST" if interaction == "create" else "PUT",
                "url": url,
                "ifNoneExist": if_none_exist,
            },
        },
    )
    _kind, resource_id, _query = entry.url_target
    if interaction == "update" and resource_id and data.get("id") != resource_id:
        entry.issues.append(
            Issue("error", "invalid", _("The resource id must match the id in the URL."), ("Patient.id",))
        )
    if entry.issues:
        raise FhirError(400, entry.issues)
    applier = Applier(caller, rules)
    try:
        with transaction.atomic():
            result = applier.apply(entry)
    except EntryFailed as failure:
        raise FhirError(failure.status, [failure.issue], applying=True) from None
    status = 201 if result.status.startswith("201") else 200
    return status, {"issues": result.issues}, result.instance


class SystemPrincipal:
    """HCRM itself acting for a source (reprocessing, pull sync): may read and write every FHIR resource."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, label: str) -> None:
        self.label = label

    def __str__(self) -> str:
        return self.label

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return perm in (SYSTEM_PERMISSION_READ, SYSTEM_PERMISSION_WRITE)

    def has_perms(self, perms, obj: Any = None) -> bool:
        return all(self.has_perm(perm) for perm in perms)


def fhir_reprocess(*, message: InboundMessage, actor=None) -> Received:
    """Apply a stored FHIR payload again, e.g. after its source profile was fixed; idempotent.

    A conditional update is replayed as a create through the identity service, which finds the
    same patient by the identifiers the resource carries.
    """
    caller = FhirCaller(SystemPrincipal(message.sender or "fhir"), message.sender or "fhir")
    kind = message.message_type
    with audit_acting_as(actor):
        if kind.startswith("Bundle/searchset"):
            return _pull_page_reprocess(message)
        if kind.startswith("Bundle/"):
            return fhir_process(message=message, caller=caller, interaction="bundle")
        resource_type, _slash, interaction = kind.partition("/")
        try:
            data = _load_json(bytes(message.raw))
        except FhirError:
            data = {}
        url = resource_type
        if interaction == "update" and isinstance(data, dict) and data.get("id"):
            url = f"{resource_type}/{data['id']}"
        return fhir_process(
            message=message,
            caller=caller,
            interaction="update" if url != resource_type else "create",
            resource_type=resource_type,
            url=url,
        )


def _pull_page_reprocess(message: InboundMessage) -> Received:
    from integrations.fhir.sync import page_apply

    bundle = _load_json(bytes(message.raw))
    with transaction.atomic():
        applied, errors = page_apply(message=message, bundle=bundle, source=message.sender)
        inbound_finish(
            message=message,
            status=InboundMessage.Status.FAILED if errors else InboundMessage.Status.APPLIED,
            error_code="entries" if errors else "",
            error="\n".join(errors),
        )
    return Received(200, {"applied": applied, "errors": errors}, message)
