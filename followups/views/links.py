"""The page a follow-up link opens: the questionnaire for the patient, no sign-in, in the patient's language."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import translation
from django.views.decorators.cache import never_cache

from followups.forms import answers_from_post, form_rows, item_text
from followups.scoring import walk
from followups.services.links import LinkGone, followup_link_answer, followup_link_open

app_name = "followup-link"


def _gone(request: HttpRequest, error: LinkGone) -> HttpResponse:
    link = error.link
    if link is not None and (link.used_at is not None or link.task.status == "completed"):
        kind = "thanks"
    elif link is not None and link.is_expired:
        kind = "expired"
    elif link is not None:
        kind = "closed"
    else:
        kind = "unknown"
    return render(request, "followups/link/gone.html", {"kind": kind}, status=error.status)


@never_cache
def link_form(request: HttpRequest, token: str) -> HttpResponse:
    """Show the questionnaire; "save" keeps the answers to continue later, "submit" sends them for good."""
    try:
        link = followup_link_open(token=token)
    except LinkGone as error:
        return _gone(request, error)
    task = link.task
    with translation.override(task.patient.preferred_language or None):
        version = link.response.version if link.response_id else task.questionnaire.current_version
        answers = dict(link.response.answers) if link.response_id else {}
        errors: dict = {}
        problems: list[str] = []
        status = 200
        saved = False
        if request.method == "POST":
            answers = answers_from_post(version.items, request.POST)
            complete = request.POST.get("action") == "submit"
            try:
                followup_link_answer(link=link, answers=answers, complete=complete)
            except LinkGone as error:
                return _gone(request, error)
            except ValidationError as error:
                errors = error.message_dict if hasattr(error, "error_dict") else {"answers": error.messages}
                texts = {item["linkId"]: item_text(item) or item["linkId"] for item in walk(version.items)}
                problems = [f"{texts.get(key, key)}: {' '.join(value)}" for key, value in errors.items()]
                status = 400
            else:
                if complete:
                    return redirect(request.path)
                saved = True
        context = {
            "title": task.questionnaire.title,
            "rows": form_rows(version.items, answers, errors),
            "problems": problems,
            "saved": saved,
        }
        return render(request, "followups/link/form.html", context, status=status)


urlpatterns = [path("<str:token>/", link_form, name="form")]
