"""Applying planned entries for one caller: patients through the identity service, clinical records
upserted on (source system, resource id), references between entries resolved as they are applied."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from hcrm.audit import Event, audit_write
from hcrm.models import Department
from hcrm.rows import rows_load
from integrations.fhir import inbound_map
from integrations.fhir.codes import assigner_for_system
from integrations.fhir.inbound_map import MappingError, ProfileRules, Unsupported
from integrations.fhir.outbound_map import instant
from integrations.fhir.outcome import Issue, operation_outcome
from integrations.fhir.registry import RESOURCES
from integrations.fhir.services.callers import FhirCaller
from integrations.fhir.services.plan import Entry
from integrations.fhir.services.records import EntryFailed, RecordPlan, records_write_rows, records_write_set
from patients.events import clinical_records_written
from patients.models import Encounter, Patient, PatientIdentifier, PatientSource
from patients.services.identity import IdentifierInput, patient_match_or_create

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

# Live patients holding an identifier (assigner, value); the first 50 holders, as `search.patient_identifier` reads them.
_BY_ASSIGNED_IDENTIFIER = (
    f"t.merged_into_id IS NULL AND t.id IN (SELECT h.patient_id FROM {PatientIdentifier._meta.db_table} h "  # noqa: S608
    f"WHERE h.assigner = %s AND h.value = %s LIMIT 50) ORDER BY t.id LIMIT 2"
)

# Patients first, then encounters, so references between entries resolve whatever their order.
APPLY_ORDER = {"Patient": 0, "Encounter": 1}


def entries_ordered(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda entry: (APPLY_ORDER.get(entry.resource_type, 2), entry.index or 0))


@dataclass
class EntryResult:
    status: str
    instance: Any = None
    resource_type: str = ""
    issues: list[Issue] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        response: dict[str, Any] = {"status": self.status}
        if self.instance is not None:
            response["location"] = f"{self.resource_type}/{self.instance.uuid}"
            response["lastModified"] = instant(self.instance.updated_at)
        if self.issues:
            response["outcome"] = operation_outcome(self.issues)
        return response


@dataclass
class PatientTally:
    """What one payload did to one patient's record, for the payload's single audit entry."""

    patient: Patient
    created: bool = False
    counts: dict[str, Counter] = field(default_factory=lambda: {"created": Counter(), "updated": Counter()})

    def count(self, outcome: str, resource_type: str) -> None:
        self.counts.setdefault(outcome, Counter())[resource_type] += 1

    def details(self) -> dict[str, Any]:
        return {outcome: dict(sorted(counter.items())) for outcome, counter in self.counts.items() if counter}


class Applier:
    """Applies entries for one caller; remembers what each entry became so references between them resolve."""

    def __init__(self, caller: FhirCaller, rules: ProfileRules, *, remote_system: str = "") -> None:
        self.caller = caller
        self.rules = rules
        # Pull sync: the remote's Patient ids are kept as identifiers under this system, so its references resolve.
        self.remote_system = remote_system
        self.targets: dict[str, Any] = {}
        self.tallies: dict[int, PatientTally] = {}
        self.departments: dict[str, Department | None] = {}
        self.unannounced: list[Any] = []

    @property
    def patients(self) -> list[Patient]:
        """The patients the applied entries touched."""
        return [tally.patient for tally in self.tallies.values()]

    def tally(self, patient: Patient) -> PatientTally:
        if patient.pk not in self.tallies:
            self.tallies[patient.pk] = PatientTally(patient)
        return self.tallies[patient.pk]

    def remember(self, entry: Entry, instance) -> None:
        keys = [entry.full_url] if entry.full_url else []
        if (entry.resource or {}).get("id"):
            keys.append(f"{entry.resource_type}/{entry.resource['id']}")
        kind, resource_id, _query = entry.url_target
        if resource_id:
            keys.append(f"{kind}/{resource_id}")
        for key in keys:
            self.targets[key] = instance

    def check_permission(self, entry: Entry) -> None:
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

    def apply(self, entry: Entry) -> EntryResult:
        """Apply one entry on its own (batch entries, pull-sync pages, single-resource writes)."""
        if entry.skipped:
            return skipped_result(entry)
        self.check_permission(entry)
        if entry.resource_type == "Patient":
            return self.apply_patient(entry)
        planned = self.record_plan(entry)
        if isinstance(planned, EntryResult):
            return planned
        return self.records_write([planned])[0]

    def apply_all(self, entries: list[Entry]) -> dict[int | None, EntryResult]:
        """Apply entries together (a transaction): patients one by one, then records a group at a time."""
        results: dict[int | None, EntryResult] = {}
        groups: list[list[Entry]] = [[], [], []]
        for entry in entries_ordered(entries):
            groups[APPLY_ORDER.get(entry.resource_type, 2)].append(entry)
        for entry in groups[0]:
            results[entry.index] = self.apply(entry)
        for group in groups[1:]:
            plans = []
            for entry in group:
                if entry.skipped:
                    results[entry.index] = skipped_result(entry)
                    continue
                self.check_permission(entry)
                planned = self.record_plan(entry)
                if isinstance(planned, EntryResult):
                    results[entry.index] = planned
                else:
                    plans.append(planned)
            for plan, result in zip(plans, self.records_write(plans, announce=False), strict=True):
                results[plan.entry.index] = result
        # Announced once for the whole payload, so listeners look up what they need once.
        clinical_records_written(self.unannounced)
        self.unannounced = []
        return results

    def audit_payload(self, *, message, details: dict[str, Any]) -> None:
        """One audit entry per patient the payload touched, naming the stored message that holds the content."""
        for tally in self.tallies.values():
            audit_write(
                event=Event.CREATE if tally.created else Event.UPDATE,
                instance=tally.patient,
                details={"inbound_message": str(message.uuid), **details, **tally.details()},
            )

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
                self.tally(found).count("unchanged", "Patient")
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
        tally = self.tally(outcome.patient)
        tally.created = tally.created or outcome.created
        tally.count("created" if outcome.created else "matched", "Patient")
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
        from integrations.fhir.search import assigned_identifier_term, patient_identifier

        params = parse_qsl(query, keep_blank_values=True)
        if not params or any(name != "identifier" for name, _value in params):
            raise EntryFailed(
                400, Issue("error", "not-supported", _("Only identifier=system|value is supported here."), (path,))
            )
        term = assigned_identifier_term(params[0][1]) if len(params) == 1 else None
        if term is not None:
            # The usual conditional create: the same search as below, in one statement prepared once per connection.
            found = rows_load(Patient, _BY_ASSIGNED_IDENTIFIER, term)
        else:
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

    def record_plan(self, entry: Entry) -> RecordPlan | EntryResult:
        """Map one clinical entry and resolve its references; an entry with nothing storable is reported skipped."""
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
            fields["department"] = self.department(department_code)
        return RecordPlan(
            entry=entry,
            model=RESOURCES[entry.resource_type].model,
            patient=patient,
            fields=fields,
            create_defaults=mapped.create_defaults,
            external_id=self.external_id(entry),
            subject_path=mapped.subject_path,
            warnings=[warning.under(entry.resource_path) for warning in mapped.warnings],
        )

    def records_write(self, plans: list[RecordPlan], *, announce: bool = True) -> list[EntryResult]:
        """Write planned records; those created or changed are announced now, or kept for `apply_all` to announce."""
        if not plans:
            return []
        if self.caller.is_system:
            written = records_write_set(plans, source=self.caller.source)
            if announce:
                clinical_records_written(written)
            else:
                self.unannounced += written
        else:
            records_write_rows(plans, source=self.caller.source, actor=self.caller.actor)
        results = []
        for plan in plans:
            self.remember(plan.entry, plan.instance)
            outcome = "created" if plan.created else "updated" if plan.changed else "unchanged"
            self.tally(plan.patient).count(outcome, plan.entry.resource_type)
            results.append(EntryResult(plan.status, plan.instance, plan.entry.resource_type, plan.warnings))
        return results

    def department(self, code: str) -> Department | None:
        if not code:
            return None
        if code not in self.departments:
            self.departments[code] = Department.objects.filter(code=code).first()
        return self.departments[code]

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
        # Later references to the same patient resolve without another query.
        self.targets[reference] = patient
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
        self.targets[reference] = found
        return found


def skipped_result(entry: Entry) -> EntryResult:
    return EntryResult("200 OK", issues=[Issue("warning", "not-supported", entry.skipped, (entry.path,))])
