"""Questionnaires and their versions: metadata, the item tree, and when editing makes a new version."""

from __future__ import annotations

import copy
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from followups.models import Questionnaire, QuestionnaireVersion
from followups.selectors import manages_all_questionnaires, questionnaire_editable_by
from followups.services.items import items_check
from hcrm.audit import audit_acting_as
from hcrm.models import Department

METADATA_FIELDS = ("code", "title", "title_en", "description", "purpose", "status")


def _disease_codes(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = value.replace("，", ",").replace(" ", ",").split(",")
    if not isinstance(value, (list, tuple)) or not all(isinstance(code, str) for code in value):
        raise ValidationError({"disease_codes": _("Give diagnosis code prefixes as text, separated by commas.")})
    codes = []
    for code in value:
        code = code.strip().upper()
        if code and code not in codes:
            codes.append(code)
    return codes


def _departments(value: Any) -> list[Department]:
    if not value:
        return []
    found = []
    for department in value:
        if isinstance(department, Department):
            found.append(department)
            continue
        # A number is a primary key (from a form), text a department code (from an import).
        if isinstance(department, int):
            row = Department.objects.filter(pk=department).first()
        else:
            row = Department.objects.filter(code=str(department)).first()
        if row is None:
            raise ValidationError({"departments": _("No department %(code)s.") % {"code": department}})
        found.append(row)
    return found


def _check_editable(actor, questionnaire: Questionnaire) -> None:
    if isinstance(actor, get_user_model()) and not questionnaire_editable_by(actor, questionnaire):
        raise PermissionDenied(
            _("Questionnaires of other departments, or of every department, are changed by administrators.")
        )


def _check_scope(actor, departments: list[Department] | None, questionnaire: Questionnaire) -> None:
    """Staff who do not manage every questionnaire keep a questionnaire within their own departments."""
    if not isinstance(actor, get_user_model()) or manages_all_questionnaires(actor):
        return
    scope = (
        departments if departments is not None else list(questionnaire.departments.all()) if questionnaire.pk else []
    )
    if not scope or not {department.pk for department in scope} <= set(actor.department_ids):
        raise ValidationError(
            {"departments": _("Choose one or more of your own departments; administrators scope questionnaires wider.")}
        )


def questionnaire_save(*, actor, data: dict[str, Any], questionnaire: Questionnaire | None = None) -> Questionnaire:
    """Create a questionnaire or change its metadata (code, titles, purpose, scope, status)."""
    questionnaire = questionnaire or Questionnaire()
    _check_editable(actor, questionnaire)
    for field in METADATA_FIELDS:
        if field in data:
            value = data[field]
            setattr(questionnaire, field, value.strip() if isinstance(value, str) else value)
    if "disease_codes" in data:
        questionnaire.disease_codes = _disease_codes(data["disease_codes"])
    departments = _departments(data["departments"]) if "departments" in data else None
    _check_scope(actor, departments, questionnaire)
    questionnaire.full_clean(exclude=["current_version"])
    with transaction.atomic(), audit_acting_as(actor):
        questionnaire.save()
        if departments is not None:
            questionnaire.departments.set(departments)
    return questionnaire


def questionnaire_version_save(
    *, actor, questionnaire: Questionnaire, items: list[dict], scoring: dict | None
) -> QuestionnaireVersion:
    """Store checked items and scoring: in place while the current version has no responses, else as version N+1."""
    scoring = scoring or {}
    _check_editable(actor, questionnaire)
    items_check(items=items, scoring=scoring)
    with transaction.atomic(), audit_acting_as(actor):
        locked = Questionnaire.objects.select_for_update().get(pk=questionnaire.pk)
        # Locking the version waits for responses being recorded against it (their foreign key holds a
        # key-share lock on it) and holds off new ones, so "no responses yet" stays true while editing.
        current = (
            QuestionnaireVersion.objects.select_for_update().get(pk=locked.current_version_id)
            if locked.current_version_id
            else None
        )
        if current is not None and not current.responses.exists():
            current.items, current.scoring = copy.deepcopy(items), copy.deepcopy(scoring)
            current.save(update_fields=["items", "scoring", "updated_at"])
            version = current
        else:
            last = locked.versions.order_by("-number").values_list("number", flat=True).first() or 0
            version = QuestionnaireVersion.objects.create(
                questionnaire=locked,
                number=last + 1,
                items=copy.deepcopy(items),
                scoring=copy.deepcopy(scoring),
                created_by=actor if isinstance(actor, get_user_model()) else None,
            )
            locked.current_version = version
            locked.save(update_fields=["current_version", "updated_at"])
    questionnaire.current_version = version
    return version
