"""Clinical events that other apps react to: a visit ended, a diagnosis or a procedure was recorded.

The archive does not know who listens. Apps that build on it (follow-ups) register a listener in
their AppConfig.ready(); whoever writes encounters, diagnoses or procedures (the archive's record
services, the HL7 and FHIR adapters) calls `clinical_records_written` with the rows it wrote, and
the listeners run once the transaction commits, so a rolled-back write triggers nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from django.db import models, transaction

logger = logging.getLogger(__name__)

Listener = Callable[[list[models.Model]], None]
_listeners: list[Listener] = []


def clinical_records_listen(listener: Listener) -> None:
    """Call `listener(records)` after each commit that wrote encounters, diagnoses or procedures (once each)."""
    if listener not in _listeners:
        _listeners.append(listener)


def clinical_records_written(records: Iterable[models.Model]) -> None:
    """Tell the listeners, on commit, about `records`: ended encounters, new or changed diagnoses and procedures."""
    from patients.models import Diagnosis, Encounter, Procedure

    if not _listeners:
        return
    relevant = [
        record
        for record in records
        if isinstance(record, Diagnosis | Procedure)
        or (isinstance(record, Encounter) and (record.ended_at is not None or record.kind == "outpatient"))
    ]
    if relevant:
        transaction.on_commit(lambda: _notify(relevant))


def _notify(records: list[models.Model]) -> None:
    for listener in list(_listeners):
        try:
            listener(records)
        except Exception:
            # The write is committed and must stay so; the periodic sweep catches what a listener missed.
            logger.exception("clinical event listener %r failed", listener)
