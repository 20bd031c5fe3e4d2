"""Who is signed in to the portal: an account id in the Django session under its own key.

Patients are not staff users; the portal never looks at `request.user`, and a staff member
signed in to the console in the same browser is no one here.
"""

from __future__ import annotations

import contextlib
import functools
import time
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from appointments.models import PortalAccount
from appointments.services import portal_label
from hcrm.audit import audit_context
from hcrm.rows import rows_load
from patients.validators import normalize_mobile

ACCOUNT_KEY = "portal_account"
SIGNED_IN_AT_KEY = "portal_signed_in_at"
SEEN_AT_KEY = "portal_seen_at"
PENDING_MOBILE_KEY = "portal_pending_mobile"
IDLE_SECONDS = 30 * 60
MAX_SECONDS = 8 * 3600
# The idle expiry is pushed back at most this often: a page seen sooner after the last costs no session write.
SEEN_EVERY_SECONDS = 60


def portal_sign_in(request, account: PortalAccount) -> None:
    request.session.cycle_key()  # a session id seen before sign-in is worthless after it
    request.session.pop(PENDING_MOBILE_KEY, None)
    request.session[ACCOUNT_KEY] = account.pk
    request.session[SIGNED_IN_AT_KEY] = request.session[SEEN_AT_KEY] = int(time.time())
    request.session.set_expiry(IDLE_SECONDS)


def portal_sign_out(request) -> None:
    for key in (ACCOUNT_KEY, SIGNED_IN_AT_KEY, SEEN_AT_KEY, PENDING_MOBILE_KEY):
        request.session.pop(key, None)
    request.session.cycle_key()


def portal_account(request) -> PortalAccount | None:
    """The signed-in account, or None (never signed in, signed in too long ago, account closed)."""
    account_id = request.session.get(ACCOUNT_KEY)
    signed_in_at = request.session.get(SIGNED_IN_AT_KEY, 0)
    if account_id is None:
        return None
    if time.time() - signed_in_at > MAX_SECONDS:
        portal_sign_out(request)
        return None
    # Read on every portal page: a fixed statement prepared once per connection, not a queryset.
    found = rows_load(PortalAccount, "t.id = %s AND t.is_active = %s", [account_id, True])
    if not found:
        portal_sign_out(request)
        return None
    return found[0]


def portal_seen(request) -> None:
    """Count the idle expiry from now (a session write), unless the last page was seen a moment ago."""
    now = int(time.time())
    if now - request.session.get(SEEN_AT_KEY, 0) >= SEEN_EVERY_SECONDS:
        request.session[SEEN_AT_KEY] = now


def portal_audit_as(mobile: str) -> None:
    """Attribute this request's reads and writes to the portal user, whoever is signed in to the console."""
    # A number the service will refuse is labelled as typed (masked all the same).
    with contextlib.suppress(ValidationError):
        mobile = normalize_mobile(mobile)
    context = audit_context()
    if context:
        context["actor"] = None
        context["client"] = portal_label(mobile)


def safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def portal_required(view):
    """Load the signed-in account into `request.portal_account`, or send the visitor to sign in."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        account = portal_account(request)
        if account is None:
            return redirect(f"{reverse('portal:sign-in')}?{urlencode({'next': request.get_full_path()})}")
        request.portal_account = account
        portal_seen(request)
        portal_audit_as(account.mobile)
        return view(request, *args, **kwargs)

    return wrapped
