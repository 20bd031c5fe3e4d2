"""The phone follow-up screen: the patient on one side, the questionnaire on the other, the call's outcome."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from followups.forms import answers_from_post, form_rows, item_text
from followups.models import CloseReason, FollowUpChannel
from followups.scoring import walk
from followups.selectors import task_initial_answers, tasks_visible_to
from followups.services import (
    letter_answers_record,
    task_call_record,
    task_precheck,
)
from followups.services.letters import letter_reference
from followups.services.tasks import DECEASED_OUTCOME
from hcrm.audit import Event, audit_read
from patients.models import ContactOutcome
from patients.selectors.archive import patient_view
from patients.timeline import patient_timeline

HISTORY_LIMIT = 15

CALL_OUTCOMES = [
    (ContactOutcome.REACHED.value, ContactOutcome.REACHED.label),
    (ContactOutcome.NO_ANSWER.value, ContactOutcome.NO_ANSWER.label),
    (ContactOutcome.BUSY.value, ContactOutcome.BUSY.label),
    (ContactOutcome.WRONG_NUMBER.value, ContactOutcome.WRONG_NUMBER.label),
    (ContactOutcome.REFUSED.value, ContactOutcome.REFUSED.label),
    (DECEASED_OUTCOME, gettext_lazy("Deceased")),
]


class CallForm(forms.Form):
    outcome = forms.ChoiceField(label=gettext_lazy("Outcome of the call"), choices=CALL_OUTCOMES)
    notes = forms.CharField(
        label=gettext_lazy("Notes"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )


class LetterForm(forms.Form):
    """A letter that came back needs no outcome: the answers are on the paper."""

    notes = CallForm.base_fields["notes"]


def _item_errors(version, error: ValidationError) -> tuple[dict, list[str]]:
    """Errors by linkId for the form, and messages that name each item."""
    texts = {item["linkId"]: item_text(item) or item["linkId"] for item in walk(version.items)}
    by_link = error.message_dict if hasattr(error, "error_dict") else {"answers": error.messages}
    named = [f"{texts.get(link, link)}: {' '.join(reasons)}" for link, reasons in by_link.items()]
    return by_link, named


@login_required
@permission_required(["followups.view_followuptask", "followups.claim_followuptask"], raise_exception=True)
def call(request: HttpRequest, uuid) -> HttpResponse:
    """Show the call screen; a POST records the call's outcome (and on reaching the patient, the answers).

    For a letter follow-up it is where the answers of the returned letter are typed in.
    """
    task = get_object_or_404(
        tasks_visible_to(request.user).select_related(
            "patient", "questionnaire__current_version", "plan", "department", "assignee", "claimed_by"
        ),
        uuid=uuid,
    )
    patient = task.patient
    version = task.questionnaire.current_version
    audit_read(event=Event.VIEW, instance=patient, details={"part": "phone follow-up", "task": str(task.uuid)})
    by_letter = task.channel == FollowUpChannel.LETTER
    form = (LetterForm if by_letter else CallForm)(request.POST or None)
    answers = task_initial_answers(task)
    errors: dict = {}
    status = 200
    closed_reason = ""
    if task.is_open:
        # Re-checked before each call: a patient who died, is back in hospital or said no is not phoned.
        closed_reason = task_precheck(task=task)
    if request.method == "POST" and not task.is_open:
        messages.error(request, _("This task is already finished; nothing was recorded."))
        status = 409
    elif request.method == "POST" and form.is_valid() and version is not None:
        answers = answers_from_post(version.items, request.POST)
        try:
            if by_letter:
                task = letter_answers_record(
                    task=task, answers=answers, notes=form.cleaned_data["notes"], actor=request.user
                )
            else:
                task = task_call_record(
                    task=task,
                    actor=request.user,
                    outcome=form.cleaned_data["outcome"],
                    notes=form.cleaned_data["notes"],
                    answers=answers,
                )
        except PermissionDenied:
            messages.error(request, _("Someone else is working on this task; nothing was recorded."))
            status = 409
        except ValidationError as error:
            errors, named = _item_errors(version, error)
            for message in named:
                messages.error(request, message)
            status = 400
        else:
            done = (
                _("The answers have been recorded: %(status)s.")
                if by_letter
                else _("The call has been recorded: %(status)s.")
            )
            messages.success(request, done % {"status": task.get_status_display()})
            return redirect(reverse("followups:worklist"))
    elif request.method == "POST":
        status = 400
    context = {
        "task": task,
        "patient": patient_view(request.user, patient),
        "timeline": patient_timeline(patient, request.user, limit=HISTORY_LIMIT),
        "form": form,
        "rows": form_rows(version.items, answers, errors) if version is not None else [],
        "closed_reason": CloseReason(task.closed_reason).label if task.closed_reason else "",
        "just_closed": bool(closed_reason),
        "by_letter": by_letter,
        "reference": letter_reference(task) if by_letter else "",
    }
    return render(request, "followups/worklists/call.html", context, status=status)


urlpatterns = [path("tasks/<uuid:uuid>/call/", call, name="task-call")]
