"""REST doors into the integrations app."""

from __future__ import annotations

from django.urls import path


def urls() -> list:
    from integrations.api.hl7 import Hl7SubmitView

    return [path("integrations/hl7/", Hl7SubmitView.as_view(), name="api-hl7-submit")]
