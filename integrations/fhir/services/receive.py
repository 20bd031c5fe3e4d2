"""The ways a FHIR payload comes in: store it raw (committed on its own), apply it, record the outcome.

A transaction Bundle is applied in one database transaction (any entry failing → nothing written);
a batch applies each entry on its own. Entries of resource types the archive does not keep
(Organization, Claim, ...) and Conditions coded only in systems it does not keep are reported as
skipped with a warning, not refused: see docs/fhir.md for why.

Writes another system makes are audited once per payload: one entry per patient it touched, naming
the stored inbound message, which keeps the exact content. A member of staff's writes are audited
row by row.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _

from followups.fhir import ImportProblem, questionnaire_resource
from followups.services import questionnaire_import
from hcrm.audit import audit_acting_as, audit_system_writes
from integrations.fhir import inbound_map
from integrations.fhir.inbound_map import ProfileRules
from integrations.fhir.outcome import FhirError, Issue, nul_issue, operation_outcome
from integrations.fhir.services.apply import Applier, entries_ordered
from integrations.fhir.services.callers import FhirCaller, SystemPrincipal, source_profile_for
from integrations.fhir.services.plan import Entry, bundle_validate, entry_plan, resource_validate
from integrations.fhir.services.records import EntryFailed
from integrations.inbound import inbound_finish, inbound_store
from integrations.models import InboundMessage, SourceProfile
from patients.models import Patient

_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 412: "Precondition Failed"}


def system_writes(caller: FhirCaller):
    """Row-by-row auditing off for another system's writes (the payload gets its own entries)."""
    return audit_system_writes() if caller.is_system else contextlib.nullcontext()


def transaction_apply(
    *, entries: list[Entry], caller: FhirCaller, rules: ProfileRules, message: InboundMessage
) -> tuple[dict, list[Patient]]:
    """All entries or none: the first failing entry rolls everything back."""
    issues = [issue for entry in entries for issue in entry.issues]
    if issues:
        raise FhirError(400, issues)
    applier = Applier(caller, rules)
    try:
        # Inside `fhir_process`'s transaction no savepoint is needed: a failure rolls all of it back.
        with system_writes(caller), transaction.atomic(savepoint=False):
            results = applier.apply_all(entries)
            if caller.is_system:
                applier.audit_payload(message=message, details={"bundle_type": "transaction"})
    except EntryFailed as failure:
        raise FhirError(failure.status if failure.status != 404 else 400, [failure.issue], applying=True) from None
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [{"response": results[entry.index].response()} for entry in entries],
    }
    return bundle, applier.patients


def batch_apply(
    *, entries: list[Entry], caller: FhirCaller, rules: ProfileRules, message: InboundMessage
) -> tuple[dict, list[Patient]]:
    """Each entry on its own; the response says for each whether it was applied."""
    applier = Applier(caller, rules)
    responses: dict[int, dict] = {}
    with system_writes(caller):
        for entry in entries_ordered(entries):
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
        if caller.is_system:
            applier.audit_payload(message=message, details={"bundle_type": "batch"})
    bundle = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [{"response": responses[entry.index]} for entry in entries],
    }
    return bundle, applier.patients


@dataclass
class Received:
    """What to answer: HTTP status, the JSON body, and for single-resource writes the stored patient."""

    status: int
    body: dict
    message: InboundMessage
    patient: Patient | None = None


def _load_json(raw: bytes) -> Any:
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FhirError.single(
            400, "structure", _("The body is not valid JSON: %(error)s") % {"error": error}
        ) from None
    if (issue := nul_issue(raw, data)) is not None:
        raise FhirError(400, [issue])
    return data


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
        data=data,
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
    data: Any = None,
) -> Received:
    """Apply a stored FHIR payload and record the outcome (used on receipt and on reprocessing).

    `data` is the payload already decoded from `message.raw`, if the caller has it.
    """
    rules = inbound_map.rules_from_profile(profile or message.source or source_profile_for(caller.source))
    try:
        if data is None:
            data = _load_json(bytes(message.raw))
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise FhirError.single(400, "structure", _("The body is not a FHIR resource."))
        # What was applied and the message's applied status are committed together, with one commit.
        with transaction.atomic():
            if interaction == "bundle":
                status, body, patients = _bundle(data, caller, rules, message)
                patient = None
            elif resource_type == "Questionnaire":
                status, body, patients, patient = 201, _questionnaire(data, caller), [], None
            else:
                status, body, patient = _single(
                    data, caller, rules, message, interaction, resource_type, url, if_none_exist
                )
                patients = [patient]
            only = patients[0] if len(patients) == 1 else None
            inbound_finish(message=message, status=InboundMessage.Status.APPLIED, patient=only)
    except FhirError as error:
        location = error.issues[0].expression[0] if error.issues and error.issues[0].expression else ""
        # Refused as sent → rejected; refused while applying (unknown reference, conflict) → failed, reprocessable.
        state = InboundMessage.Status.FAILED if error.applying else InboundMessage.Status.REJECTED
        inbound_finish(
            message=message, status=state, error_code=str(error.status), error_location=location, error=str(error)
        )
        return Received(error.status, operation_outcome(error.issues), message)
    except Exception as error:
        inbound_finish(message=message, status=InboundMessage.Status.FAILED, error_code="500", error=repr(error)[:2000])
        raise
    return Received(status, body, message, patient)


def _bundle(
    data: dict, caller: FhirCaller, rules: ProfileRules, message: InboundMessage
) -> tuple[int, dict, list[Patient]]:
    if data.get("resourceType") != "Bundle":
        raise FhirError.single(400, "invalid", _("POST to the base takes a Bundle."), "resourceType")
    kind = data.get("type")
    if kind not in ("transaction", "batch"):
        raise FhirError.single(
            400, "invalid", _("Only transaction and batch bundles are accepted here."), "Bundle.type"
        )
    raw_entries = data.get("entry") if isinstance(data.get("entry"), list) else []
    entries = [entry_plan(index, raw) for index, raw in enumerate(raw_entries)]
    own = bundle_validate(data, {entry.index: entry for entry in entries})
    if own:
        raise FhirError(400, own)
    if kind == "transaction":
        body, patients = transaction_apply(entries=entries, caller=caller, rules=rules, message=message)
    else:
        body, patients = batch_apply(entries=entries, caller=caller, rules=rules, message=message)
    return 200, body, patients


def _questionnaire(data: dict, caller: FhirCaller) -> dict:
    """A Questionnaire is imported as a new questionnaire or the next version of the one with its code."""
    if data.get("resourceType") != "Questionnaire":
        raise FhirError.single(400, "invalid", _("Expected a Questionnaire resource."), "resourceType")
    try:
        version = questionnaire_import(actor=caller.actor or caller.source, data=data)
    except PermissionDenied as refusal:
        raise FhirError.single(403, "forbidden", str(refusal), "Questionnaire") from None
    except ImportProblem as problem:
        raise FhirError(
            400,
            [
                Issue("error", "invalid", message, (path,))
                for path, messages in problem.problems.items()
                for message in messages
            ],
        ) from None
    return questionnaire_resource(version)


def _single(data, caller, rules, message, interaction, resource_type, url, if_none_exist) -> tuple[int, dict, Patient]:
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
    resource_validate(entry)
    if entry.issues:
        raise FhirError(400, entry.issues)
    applier = Applier(caller, rules)
    try:
        with system_writes(caller), transaction.atomic(savepoint=False):
            result = applier.apply(entry)
            if caller.is_system:
                applier.audit_payload(message=message, details={"interaction": interaction})
    except EntryFailed as failure:
        raise FhirError(failure.status, [failure.issue], applying=True) from None
    status = 201 if result.status.startswith("201") else 200
    return status, {"issues": result.issues}, result.instance


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
