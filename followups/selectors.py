"""Reads of questionnaires and responses that the console, the API and other follow-up pages share."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from followups.models import Questionnaire, QuestionnaireResponse
from hcrm.models import Department
from hcrm.roles import Role
from patients.selectors import patients_visible_to


def questionnaires_for_department(queryset: QuerySet[Questionnaire], department: Department | str) -> QuerySet:
    """Questionnaires meant for a department: scoped to it, or to no department (meant for every one)."""
    code = department.code if isinstance(department, Department) else department
    through = Questionnaire.departments.through
    scoped = Exists(through.objects.filter(questionnaire_id=OuterRef("pk")))
    mine = Exists(through.objects.filter(questionnaire_id=OuterRef("pk"), department__code=code))
    return queryset.filter(mine | ~scoped)


def questionnaires_for_diagnosis(questionnaires, code: str) -> list[Questionnaire]:
    """Those whose diagnosis prefixes match `code`, or that have none (meant for any diagnosis)."""
    code = code.strip().upper()
    return [q for q in questionnaires if not q.disease_codes or any(code.startswith(p) for p in q.disease_codes)]


def questionnaires_filtered(
    *, purpose: str = "", department: str = "", status: str = "", search: str = ""
) -> QuerySet[Questionnaire]:
    rows = Questionnaire.objects.select_related("current_version").prefetch_related("departments")
    if purpose:
        rows = rows.filter(purpose=purpose)
    if status:
        rows = rows.filter(status=status)
    if department:
        rows = questionnaires_for_department(rows, department)
    if search:
        rows = rows.filter(Q(title__icontains=search) | Q(code__icontains=search) | Q(title_en__icontains=search))
    return rows.order_by("title", "pk")


def responses_visible_to(user) -> QuerySet[QuestionnaireResponse]:
    """Responses of the patients `user` may see."""
    visible = patients_visible_to(user).filter(pk=OuterRef("patient_id"))
    return QuestionnaireResponse.objects.filter(Exists(visible))


def manages_all_questionnaires(user) -> bool:
    """Administrators change every questionnaire, those meant for every department included."""
    return bool(getattr(user, "is_superuser", False)) or Role.ADMINISTRATOR in getattr(user, "role_codes", ())


def questionnaire_editable_by(user, questionnaire: Questionnaire) -> bool:
    """Others (department heads, by default) change questionnaires meant only for their own departments.

    A questionnaire shared with another department, or meant for every one, changes that department's
    follow-ups too, so it is left to administrators.
    """
    if manages_all_questionnaires(user):
        return True
    if questionnaire.pk is None:
        return True
    scope = {department.pk for department in questionnaire.departments.all()}
    return bool(scope) and scope <= set(user.department_ids)
