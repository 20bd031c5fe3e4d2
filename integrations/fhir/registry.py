"""The one table of what the FHIR facade supports: views dispatch from it and the CapabilityStatement is built from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from appointments.models import Appointment, Schedule, Slot
from followups import fhir as followups_fhir
from followups.models import QuestionnaireResponse, QuestionnaireVersion
from integrations.fhir import outbound_map, search
from patients.models import Allergy, Diagnosis, Encounter, LabResult, MedicationOrder, Patient, Procedure

FHIR_VERSION = "4.0.1"
SYSTEM_PERMISSION_READ = "integrations.read_fhir"
SYSTEM_PERMISSION_WRITE = "integrations.write_fhir"


@dataclass(frozen=True)
class ResourceSpec:
    type: str
    model: type
    to_fhir: Callable
    # Interactions in CapabilityStatement terms: read, search-type, create, update.
    interactions: tuple[str, ...] = ()
    search_params: dict[str, search.SearchParam] = field(default_factory=dict)
    operations: tuple[str, ...] = ()
    # Accepted as entries of transaction and batch bundles.
    bundle_write: bool = True
    related: tuple[str, ...] = ()
    # The rows belong to a patient: staff see those of the patients they may see. Schedules and slots
    # are the hospital's timetable (the portal shows them to anyone), not patient data.
    of_patient: bool = True
    # Create accepts If-None-Exist (conditional create).
    conditional_create: bool = False
    # Prefetches for rendering a page of rows.
    prefetch: tuple[str, ...] = ()

    @property
    def model_name(self) -> str:
        return self.model._meta.model_name

    @property
    def read_permission(self) -> str:
        """What a member of staff needs to read this type (systems need `integrations.read_fhir`)."""
        return f"{self.model._meta.app_label}.view_{self.model_name}"

    @property
    def write_permissions(self) -> tuple[str, str]:
        app = self.model._meta.app_label
        return (f"{app}.add_{self.model_name}", f"{app}.change_{self.model_name}")


RESOURCES: dict[str, ResourceSpec] = {
    spec.type: spec
    for spec in [
        ResourceSpec(
            "Patient",
            Patient,
            outbound_map.patient_resource,
            interactions=("read", "search-type", "create", "update"),
            search_params=search.PATIENT_PARAMS,
            operations=("everything",),
            conditional_create=True,
        ),
        ResourceSpec(
            "Encounter",
            Encounter,
            outbound_map.encounter_resource,
            interactions=("read", "search-type"),
            search_params=search.ENCOUNTER_PARAMS,
            related=("patient", "department", "doctor"),
        ),
        ResourceSpec(
            "Condition",
            Diagnosis,
            outbound_map.condition_resource,
            interactions=("read", "search-type"),
            search_params=search.CONDITION_PARAMS,
            related=("patient", "encounter"),
        ),
        ResourceSpec(
            "Observation",
            LabResult,
            outbound_map.observation_resource,
            interactions=("read", "search-type"),
            search_params=search.OBSERVATION_PARAMS,
            related=("patient", "encounter"),
        ),
        ResourceSpec(
            "Procedure",
            Procedure,
            outbound_map.procedure_resource,
            interactions=("read",),
            related=("patient", "encounter"),
        ),
        ResourceSpec(
            "MedicationRequest",
            MedicationOrder,
            outbound_map.medication_request_resource,
            interactions=("read",),
            related=("patient", "encounter"),
        ),
        ResourceSpec(
            "AllergyIntolerance", Allergy, outbound_map.allergy_resource, interactions=("read",), related=("patient",)
        ),
        ResourceSpec(
            "Schedule",
            Schedule,
            outbound_map.schedule_resource,
            interactions=("read", "search-type"),
            search_params=search.SCHEDULE_PARAMS,
            bundle_write=False,
            related=("doctor", "department"),
            of_patient=False,
        ),
        ResourceSpec(
            "Slot",
            Slot,
            outbound_map.slot_resource,
            interactions=("read", "search-type"),
            search_params=search.SLOT_PARAMS,
            bundle_write=False,
            related=("schedule",),
            of_patient=False,
        ),
        ResourceSpec(
            "Appointment",
            Appointment,
            outbound_map.appointment_resource,
            interactions=("read", "search-type"),
            search_params=search.APPOINTMENT_PARAMS,
            bundle_write=False,
            related=("patient", "slot", "schedule__department", "doctor"),
        ),
        ResourceSpec(
            "Questionnaire",
            QuestionnaireVersion,
            followups_fhir.questionnaire_resource,
            interactions=("read", "search-type", "create"),
            search_params=search.QUESTIONNAIRE_PARAMS,
            bundle_write=False,
            related=("questionnaire",),
            of_patient=False,
            prefetch=("questionnaire__departments",),
        ),
        ResourceSpec(
            "QuestionnaireResponse",
            QuestionnaireResponse,
            followups_fhir.response_resource,
            interactions=("read", "search-type"),
            search_params=search.RESPONSE_PARAMS,
            bundle_write=False,
            related=("patient", "version__questionnaire", "answered_by"),
        ),
    ]
}
# Types accepted in transaction and batch bundles (the others are skipped there).
BUNDLE_TYPES = frozenset(name for name, spec in RESOURCES.items() if spec.bundle_write)
SEARCHABLE = {name: spec for name, spec in RESOURCES.items() if "search-type" in spec.interactions}
# $everything gathers these record types after the patient, in this order.
EVERYTHING_TYPES = (
    "Encounter",
    "Condition",
    "Observation",
    "Procedure",
    "MedicationRequest",
    "AllergyIntolerance",
    "Appointment",
    "QuestionnaireResponse",
)


def capability_statement(base_url: str) -> dict:
    """What this server does, generated from `RESOURCES` so it always matches the views."""
    resources = []
    for spec in RESOURCES.values():
        entry: dict = {"type": spec.type}
        if spec.interactions:
            entry["interaction"] = [{"code": code} for code in spec.interactions]
        if "update" in spec.interactions:
            entry["updateCreate"] = False
            entry["conditionalUpdate"] = True
        if spec.conditional_create:
            entry["conditionalCreate"] = True
        if spec.search_params:
            entry["searchParam"] = [
                {"name": param.name, "type": param.type, "documentation": param.documentation}
                for param in spec.search_params.values()
            ]
        if spec.operations:
            entry["operation"] = [
                {"name": name, "definition": f"http://hl7.org/fhir/OperationDefinition/{spec.type}-{name}"}
                for name in spec.operations
            ]
        if spec.bundle_write:
            entry["documentation"] = "Written through transaction and batch bundles (POST; PUT with the sender's id)."
        elif "create" in spec.interactions:
            entry["documentation"] = "POST imports the resource as it is given (not in bundles)."
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": timezone.localdate().isoformat(),
        "publisher": "HCRM",
        "kind": "instance",
        "software": {"name": "HCRM", "version": getattr(settings, "HCRM_VERSION", "1.0")},
        "implementation": {"description": "HCRM FHIR R4 facade", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Result parameters on every search: "
                + "; ".join(f"{name}: {text}" for name, text in search.RESULT_PARAMS.items()),
                "security": {
                    "description": "Authorization: Api-Key <key> (scopes fhir.read, fhir.write) "
                    "or Bearer <token> of a member of staff."
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }
