"""Celery tasks for patient statistics and segments."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from celery import shared_task
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from patients.selectors.segments import patient_id_batch_end
from patients.services.stats import patient_stats_analyze, patient_stats_recompute

logger = logging.getLogger(__name__)

BATCH_SIZE = 10_000
# One full run at a time: the first batch claims this key, each batch extends it, the last releases it.
RUN_KEY = "patients:stats-recompute-run"
RUN_TIMEOUT = 3600


@shared_task(
    name="patients.tasks.segments.patient_stats_recompute_all",
    time_limit=300,
    soft_time_limit=240,
    autoretry_for=(Exception,),
    retry_backoff=30,
    max_retries=5,
)
def patient_stats_recompute_all(
    after_id: int = 0, today: str | None = None, run: str | None = None, batch_size: int = BATCH_SIZE
) -> int:
    """Recompute the statistics of the next batch of patients after `after_id`, then enqueue the batch after it."""
    if run is None:
        run = uuid.uuid4().hex
        if not cache.add(RUN_KEY, run, RUN_TIMEOUT):
            logger.info("patient statistics: a recompute is already running, not starting another")
            return 0
    elif cache.get(RUN_KEY) not in (None, run):
        logger.info("patient statistics: run %s was superseded, stopping", run)
        return 0
    else:
        cache.set(RUN_KEY, run, RUN_TIMEOUT)
    day = dt.date.fromisoformat(today) if today else timezone.localdate()
    last_id = patient_id_batch_end(after_id, batch_size)
    if last_id is None:
        patient_stats_analyze()
        cache.delete(RUN_KEY)
        logger.info("patient statistics: run %s finished after patient id %d", run, after_id)
        return 0
    written = patient_stats_recompute(id_range=(after_id + 1, last_id), today=day)
    logger.info("patient statistics: ids %d..%d recomputed (%d rows)", after_id + 1, last_id, written)
    transaction.on_commit(
        lambda: patient_stats_recompute_all.delay(
            after_id=last_id, today=day.isoformat(), run=run, batch_size=batch_size
        )
    )
    return written


@shared_task(name="patients.tasks.segments.patient_stats_recompute_patients", time_limit=120, soft_time_limit=100)
def patient_stats_recompute_patients(patient_ids: list[int]) -> int:
    """Recompute the statistics of a few patients (after an import changed their visits or charges)."""
    written = patient_stats_recompute(patient_ids=patient_ids)
    logger.info("patient statistics: %d patients recomputed", written)
    return written


def patient_stats_recompute_start() -> bool:
    """On demand: enqueue a full recompute once the current transaction commits; False if one is running."""
    if cache.get(RUN_KEY) is not None:
        return False
    transaction.on_commit(lambda: patient_stats_recompute_all.delay())
    return True
