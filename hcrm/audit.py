"""Who did what to which patient, from where.

Writes are captured by django-auditlog's model signals (registered per model
with `audit_register`); reads, searches, exports and reveals are recorded with
`audit_read`. Both land in `hcrm.AuditEntry` with the actor, address, user
agent and client taken from the request context set by `AuditContextMiddleware`
(and refreshed by the API once it has authenticated a token or API key).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from auditlog.context import auditlog_value, disable_auditlog, set_extra_data
from auditlog.middleware import AuditlogMiddleware
from auditlog.models import DEFAULT_OBJECT_REPR
from auditlog.registry import auditlog
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, models
from django.db.models.signals import post_save, pre_save
from django.utils.encoding import smart_str

from hcrm.models import AuditEntry
from hcrm.rows import row_insert

Event = AuditEntry.Event


# django-auditlog's receivers are connected globally and read every thread's context with
# `context["signal_duid"]`: a context without that key breaks audit writes in other threads.
_EMPTY_CONTEXT: dict[str, Any] = {"signal_duid": None}


class AuditContextMiddleware(AuditlogMiddleware):
    """Adds the user agent and client label to django-auditlog's request context."""

    def get_extra_data(self, request):
        data = super().get_extra_data(request)
        data["user_agent"] = request.headers.get("User-Agent", "")[:300]
        data["client"] = "api" if request.path.startswith("/api/") else "console"
        return data

    def __call__(self, request):
        try:
            return super().__call__(request)
        finally:
            # django-auditlog leaves the context set; a later write in this thread
            # outside a request must not be attributed to this request's user.
            auditlog_value.set(dict(_EMPTY_CONTEXT))


def audit_context_update(*, actor=None, client: str | None = None) -> None:
    """Point the current request's audit context at an actor authenticated after the middleware ran."""
    try:
        context = auditlog_value.get()
    except LookupError:
        return
    if actor is not None and isinstance(actor, get_user_model()):
        context["actor"] = actor
        context.pop(_ACTING_AS, None)
    if client is not None:
        context["client"] = client


def audit_context() -> dict[str, Any]:
    try:
        return auditlog_value.get()
    except LookupError:
        return {}


def audit_register(
    model: type[models.Model],
    *,
    mask_fields: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    m2m_fields: tuple[str, ...] = (),
) -> None:
    """Track every create/update/delete of `model`, masking sensitive fields in the stored diff."""
    # Reverse relations are not columns of this row; auditlog would log them as noise.
    reverse = [field.name for field in model._meta.get_fields() if field.auto_created and not field.concrete]
    auditlog.register(
        model,
        mask_fields=list(mask_fields),
        exclude_fields=["created_at", "updated_at", *reverse, *exclude],
        m2m_fields=set(m2m_fields),
    )


_ACTION_BY_EVENT = {
    Event.CREATE: AuditEntry.Action.CREATE,
    Event.UPDATE: AuditEntry.Action.UPDATE,
    Event.DELETE: AuditEntry.Action.DELETE,
}


def audit_write(
    *, event: str, instance: models.Model, reason: str = "", details: dict[str, Any] | None = None
) -> AuditEntry:
    """Record a write that model signals do not see (a conditional update, a state change on the system's rows)."""
    entry = audit_entry_build(event=event, instance=instance, reason=reason, details=details)
    row_insert(entry)
    audit_entry_saved(entry)
    return entry


def audit_entry_build(
    *, event: str, instance: models.Model, reason: str = "", details: dict[str, Any] | None = None
) -> AuditEntry:
    """The entry `audit_write` records, built but not saved, for a caller that inserts it with other rows.

    Filled in as django-auditlog's `log_create` fills it; `pre_save` is sent as `save()` would send
    it, so the acting context sets the same fields. Insert it with `hcrm.rows.row_insert` (or
    `rows_insert`), then call `audit_entry_saved`.
    """
    from auditlog.cid import get_cid
    from django.contrib.contenttypes.models import ContentType

    context = audit_context()
    actor = context.get("actor")
    try:
        representation = smart_str(instance)
    except ObjectDoesNotExist:
        representation = DEFAULT_OBJECT_REPR
    entry = AuditEntry(
        content_type=ContentType.objects.get_for_model(instance),
        object_pk=instance.pk,
        object_id=instance.pk if isinstance(instance.pk, int) else None,
        object_repr=representation,
        serialized_data=AuditEntry.objects._get_serialized_data_or_none(instance),
        cid=get_cid(),
        action=_ACTION_BY_EVENT[event],
        event=event,
        reason=reason,
        additional_data=details or None,
        remote_addr=context.get("remote_addr"),
        user_agent=context.get("user_agent", ""),
        client=context.get("client", ""),
        actor=actor if isinstance(actor, get_user_model()) else None,
    )
    patient_uuid = getattr(instance, "audit_patient_uuid", None)
    if patient_uuid is not None:
        entry.patient_uuid = patient_uuid
    pre_save.send(sender=AuditEntry, instance=entry, raw=False, using=connection.alias, update_fields=None)
    return entry


def audit_entry_saved(entry: AuditEntry) -> None:
    """Tell `post_save` receivers about an entry inserted without `save()`."""
    post_save.send(
        sender=AuditEntry, instance=entry, created=True, raw=False, using=connection.alias, update_fields=None
    )


def audit_read(
    *,
    event: str,
    instance: models.Model | None = None,
    patient_uuid=None,
    reason: str = "",
    details: dict[str, Any] | None = None,
    action: int = AuditEntry.Action.ACCESS,
) -> AuditEntry:
    """Record a read-side act (view, list, search, export, reveal) by the current actor."""
    context = audit_context()
    actor = context.get("actor")
    fields: dict[str, Any] = {
        "action": action,
        "event": event,
        "reason": reason,
        "additional_data": details or None,
        "remote_addr": context.get("remote_addr"),
        "user_agent": context.get("user_agent", ""),
        "client": context.get("client", ""),
        "actor": actor if isinstance(actor, get_user_model()) else None,
    }
    if patient_uuid is not None:
        fields["patient_uuid"] = patient_uuid
    if instance is not None:
        return AuditEntry.objects.log_create(instance, force_log=True, **fields)
    from django.contrib.contenttypes.models import ContentType

    return AuditEntry.objects.create(
        content_type=ContentType.objects.get_for_model(AuditEntry),
        object_pk="",
        object_repr="",
        **fields,
    )


# The context key naming whom a block acts as (no column of the entry has this name, so it is never copied to one).
_ACTING_AS = "acting_as"


@contextmanager
def audit_acting_as(actor) -> Iterator[None]:
    """Attribute the writes inside the block to `actor`, keeping the request's address if there is one."""
    context = audit_context()
    # Equal, not only the same object: a system's label is a string made afresh by each caller. A label
    # is not kept as the actor (that is a user or nobody), so what the block acts as is kept beside it.
    if actor is None or context.get(_ACTING_AS, context.get("actor")) == actor:
        yield
        return
    data = {key: value for key, value in context.items() if key != "signal_duid"}
    data["actor"] = actor if isinstance(actor, get_user_model()) else None
    data[_ACTING_AS] = actor
    if not isinstance(actor, get_user_model()):
        data.setdefault("client", str(actor))
    try:
        with set_extra_data(context_data=data):
            yield
    finally:
        # set_extra_data replaced the request's context; put the outer one back.
        auditlog_value.set(context if "signal_duid" in context else {**context, **_EMPTY_CONTEXT})


@contextmanager
def audit_system_writes() -> Iterator[None]:
    """Writes another system makes (HL7, FHIR) are not logged row by row inside the block.

    The caller records one entry per received message with `audit_write`, naming the patient and
    the stored inbound message, which keeps the exact content; writes by a person are never
    wrapped in this.
    """
    with disable_auditlog():
        yield
