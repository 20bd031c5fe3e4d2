"""Portal pages: load, call a service, render."""

from __future__ import annotations

from django.http import Http404


def waitlist_offer(request, entry):
    raise Http404
