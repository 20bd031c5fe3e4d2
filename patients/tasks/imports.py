"""Celery task of the spreadsheet import: a large file outlasts a web request."""

from __future__ import annotations

import logging

from celery import shared_task
from django.contrib.auth import get_user_model

from hcrm.models import Department
from patients.models import ImportStatus, PatientImport
from patients.services.imports import IMPORT_TIME_LIMIT, patient_import_run

logger = logging.getLogger(__name__)


@shared_task(
    name="patients.tasks.imports.patient_import_task",
    time_limit=IMPORT_TIME_LIMIT + 60,
    soft_time_limit=IMPORT_TIME_LIMIT,
)
def patient_import_task(*, import_id: int, actor_id: int | None, mode: str, department_ids: list[int]) -> str:
    """Import a claimed file; a redelivered task finds it imported and does nothing."""
    patient_import = PatientImport.objects.filter(pk=import_id).first()
    if patient_import is None or patient_import.status != ImportStatus.IMPORTING:
        logger.info("patient import %s: not waiting to be imported, nothing to do", import_id)
        return patient_import.status if patient_import else "missing"
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    departments = list(Department.objects.filter(pk__in=department_ids))
    patient_import = patient_import_run(
        patient_import=patient_import, actor=actor, mode=mode, default_departments=departments
    )
    logger.info(
        "patient import %s: %s, %d created, %d updated, %d skipped",
        patient_import.uuid,
        patient_import.status,
        patient_import.created_count,
        patient_import.updated_count,
        patient_import.skipped_count,
    )
    return patient_import.status
