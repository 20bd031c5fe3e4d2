"""The built-in questionnaires written to the database, idempotently."""

from __future__ import annotations

from collections import Counter

from django.db import transaction

from followups.builtin import BUILTINS
from followups.models import Questionnaire, QuestionnaireStatus, QuestionnaireVersion


def _version_write(questionnaire: Questionnaire, definition: dict) -> str:
    """Make the current version say what the definition says: unchanged, updated in place, or a new version
    when the current one already has responses (answered versions are frozen)."""
    latest = questionnaire.versions.order_by("-number").first()
    if latest is None:
        latest = QuestionnaireVersion.objects.create(
            questionnaire=questionnaire, number=1, items=definition["items"], scoring=definition["scoring"]
        )
        outcome = "created"
    elif latest.items == definition["items"] and latest.scoring == definition["scoring"]:
        outcome = "unchanged"
    elif latest.responses.exists():
        latest = QuestionnaireVersion.objects.create(
            questionnaire=questionnaire,
            number=latest.number + 1,
            items=definition["items"],
            scoring=definition["scoring"],
        )
        outcome = "new_version"
    else:
        latest.items, latest.scoring = definition["items"], definition["scoring"]
        latest.save(update_fields=["items", "scoring", "updated_at"])
        outcome = "updated"
    if questionnaire.current_version_id != latest.pk:
        questionnaire.current_version = latest
        questionnaire.save(update_fields=["current_version", "updated_at"])
    return outcome


@transaction.atomic
def builtin_questionnaires_load() -> Counter:
    """Create or bring up to date every built-in questionnaire; counts by outcome (created, updated,
    new_version, unchanged). A built-in that staff retired stays retired. The built-in alert rules on them
    are created too, once."""
    outcomes: Counter = Counter()
    for code, definition in BUILTINS.items():
        fields = {
            "title": definition["title"],
            "title_en": definition["title_en"],
            "description": definition["description"],
            "purpose": definition["purpose"],
            "disease_codes": definition.get("disease_codes", []),
            "is_builtin": True,
        }
        questionnaire = Questionnaire.objects.select_for_update().filter(code=code).first()
        if questionnaire is None:
            questionnaire = Questionnaire.objects.create(code=code, status=QuestionnaireStatus.ACTIVE, **fields)
        elif any(getattr(questionnaire, name) != value for name, value in fields.items()):
            for name, value in fields.items():
                setattr(questionnaire, name, value)
            questionnaire.save(update_fields=[*fields, "updated_at"])
        outcomes[_version_write(questionnaire, definition)] += 1
    builtin_alert_rules_load()
    return outcomes


def builtin_alert_rules_load() -> int:
    """Create the built-in alert rules that do not exist yet (by name); those staff changed are left alone."""
    from followups.builtin.alert_rules import ALERT_RULES, DEFAULTS
    from followups.models import AlertRule

    created = 0
    questionnaires = {q.code: q for q in Questionnaire.objects.filter(code__in={code for _n, code, _f in ALERT_RULES})}
    for name, code, fields in ALERT_RULES:
        if code not in questionnaires:
            continue
        _rule, made = AlertRule.objects.get_or_create(
            name=name, defaults={**DEFAULTS, **fields, "questionnaire": questionnaires[code]}
        )
        created += made
    return created
