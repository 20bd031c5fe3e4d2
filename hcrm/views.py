"""Console pages of the platform: sign-in, home, audit trail, errors, health."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from hcrm.forms import AuditFilterForm, LoginForm
from hcrm.selectors import audit_entries_visible_to


class LoginView(auth_views.LoginView):
    template_name = "hcrm/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "hcrm/home.html")


@login_required
def audit_trail(request: HttpRequest) -> HttpResponse:
    """Staff activity: filter by staff member (username), event and dates."""
    entries = audit_entries_visible_to(request.user)
    if entries is None:
        raise PermissionDenied
    form = AuditFilterForm(request.GET or None)
    if form.is_valid():
        entries = form.apply(entries)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "hcrm/audit_trail.html", {"form": form, "page": page})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """For load balancers and monitoring: 200 when the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means "not healthy"
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


def lockout_response(request: HttpRequest, credentials=None, *args, **kwargs) -> HttpResponse:
    """What a locked-out account sees: a JSON error for the API, the sign-in page otherwise."""
    message = _(
        "Too many failed sign-ins: this account is locked for a while. Try again later or ask an administrator."
    )
    if request.path.startswith("/api/"):
        return JsonResponse({"errors": [{"field": None, "code": "locked_out", "message": message}]}, status=429)
    messages.error(request, message)
    return render(request, "hcrm/login.html", {"form": LoginForm(request)}, status=429)


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"errors": [{"field": None, "code": code, "message": message}]}, status=status)
    return render(request, "hcrm/error.html", {"status": status, "message": message}, status=status)


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return _error(request, 404, "not_found", _("There is nothing at this address."))


def forbidden(request: HttpRequest, exception=None) -> HttpResponse:
    return _error(request, 403, "permission_denied", _("Your role does not allow this."))


def server_error(request: HttpRequest) -> HttpResponse:
    return _error(request, 500, "server_error", _("Something went wrong on our side; it has been logged."))
