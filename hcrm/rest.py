"""API plumbing shared by every app: authentication, permissions, errors, pagination."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, permissions
from rest_framework.authentication import BaseAuthentication, TokenAuthentication, get_authorization_header
from rest_framework.exceptions import ErrorDetail
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from hcrm.audit import audit_context_update
from hcrm.models import IntegrationKey
from hcrm.roles import INTEGRATION_SCOPES

# --- Authentication ---------------------------------------------------------------


class BearerTokenAuthentication(TokenAuthentication):
    """`Authorization: Bearer <token>` (also `Token <token>`) for staff API clients."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if header and header[0].lower() == b"token":
            # DRF reads the cached `request.headers`, so rewriting META would not be seen: check it here.
            if len(header) != 2:
                raise exceptions.AuthenticationFailed(_("Invalid token header."))
            result = self.authenticate_credentials(header[1].decode("latin-1"))
        else:
            result = super().authenticate(request)
        if result is not None:
            audit_context_update(actor=result[0], client="api")
        return result


class IntegrationPrincipal:
    """Stands in for a user when another system calls with an API key; its scopes are its permissions."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key: IntegrationKey) -> None:
        self.key = key
        self.permissions = {perm for scope in key.scopes for perm in INTEGRATION_SCOPES.get(scope, ())}
        self.department_ids: set[int] = set()
        self.role_codes: list[str] = []

    def __str__(self) -> str:
        return f"integration:{self.key.name}"

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return perm in self.permissions

    def has_perms(self, perms, obj: Any = None) -> bool:
        return all(self.has_perm(perm) for perm in perms)


class IntegrationKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key <key>` for HIS, EMR and other systems."""

    keyword = "Api-Key"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid API key header."))
        try:
            key = IntegrationKey.objects.get_from_key(header[1].decode())
        except (IntegrationKey.DoesNotExist, UnicodeError):
            raise exceptions.AuthenticationFailed(_("Invalid API key.")) from None
        if not key.is_valid(header[1].decode()):
            raise exceptions.AuthenticationFailed(_("This API key is revoked or expired."))
        principal = IntegrationPrincipal(key)
        audit_context_update(client=str(principal))
        return principal, key

    def authenticate_header(self, request) -> str:
        return self.keyword


# --- Permissions ------------------------------------------------------------------------


class RolePermission(permissions.BasePermission):
    """Model permissions by HTTP method; reads need `view_*` too, unlike DRF's default.

    A view may set `required_permissions = {"GET": [...], ...}` to name its own.
    """

    method_actions = {
        "GET": "view",
        "HEAD": "view",
        "OPTIONS": "view",
        "POST": "add",
        "PUT": "change",
        "PATCH": "change",
        "DELETE": "delete",
    }

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        required = self.permissions_for(request, view)
        if required is None:
            return True
        return user.has_perms(required)

    def permissions_for(self, request, view) -> list[str] | None:
        declared = getattr(view, "required_permissions", None)
        if declared is not None:
            action = getattr(view, "action", None)
            if action in declared:
                return declared[action]
            return declared.get(request.method, declared.get("*"))
        queryset = getattr(view, "queryset", None)
        if queryset is None:
            return None
        model = queryset.model
        action = self.method_actions.get(request.method)
        if action is None:
            return ["__method_not_allowed__"]
        return [f"{model._meta.app_label}.{action}_{model._meta.model_name}"]


# --- Errors -------------------------------------------------------------------------------


def _flatten(detail: Any, path: str | None = None) -> list[dict[str, Any]]:
    """DRF's nested error detail → `[{"field": "contacts.0.phone", "code": ..., "message": ...}]`."""
    if isinstance(detail, dict):
        errors = []
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                errors += _flatten(value, path)
            else:
                # Keys may be list indexes (ListField errors): 0 is a field path too.
                errors += _flatten(value, f"{path}.{key}" if path else str(key))
        return errors
    if isinstance(detail, list):
        errors = []
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                errors += _flatten(value, f"{path}.{index}" if path else str(index))
            else:
                errors += _flatten(value, path)
        return errors
    return [{"field": path, "code": getattr(detail, "code", "invalid"), "message": str(detail)}]


def _django_error_detail(exc: DjangoValidationError) -> dict[str, list[ErrorDetail]]:
    """A model or service ValidationError as DRF detail, keeping each error's code."""

    def details(errors) -> list[ErrorDetail]:
        return [ErrorDetail(message, code=error.code or "invalid") for error in errors for message in error.messages]

    if hasattr(exc, "error_dict"):
        return {field: details(errors) for field, errors in exc.error_dict.items()}
    return {"non_field_errors": details(exc.error_list)}


def error_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"errors": errors}


def exception_handler(exc, context):
    """Every API error has one shape: `{"errors": [{"field", "code", "message"}]}`."""
    from rest_framework.views import exception_handler as drf_exception_handler  # imports this module

    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_error_detail(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        errors = [{"field": None, "code": getattr(detail, "code", exc.default_code), "message": str(detail)}]
    response.data = error_body(errors)
    return response


# --- Pagination ---------------------------------------------------------------------------


class Pagination(PageNumberPagination):
    """Page numbers with `page_size` up to 200; counts are exact up to `COUNT_LIMIT`.

    Counting every match in a million-patient table costs a hundred times more
    than the page itself, and a person reading "more than 1,000" narrows the
    search rather than paging on. Pages stop at `MAX_OFFSET` rows; systems that
    synchronise should page by `updated_since` instead.
    """

    page_size_query_param = "page_size"
    max_page_size = 200
    COUNT_LIMIT = 1_000
    MAX_OFFSET = 10_000

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        page_size = self.get_page_size(request)
        try:
            self.page_number = int(request.query_params.get(self.page_query_param, 1))
        except ValueError:
            raise exceptions.ValidationError({"page": [_("A page number is a whole number.")]}) from None
        if self.page_number < 1:
            raise exceptions.ValidationError({"page": [_("Pages start at 1.")]})
        offset = (self.page_number - 1) * page_size
        if offset >= self.MAX_OFFSET:
            raise exceptions.ValidationError(
                {"page": [_("Narrow the search with filters to see results this far down.")]}
            )
        rows = list(queryset[offset : offset + page_size + 1])
        self.has_next = len(rows) > page_size
        self.page_rows = rows[:page_size]
        if self.page_number == 1 and not self.has_next:
            self.count = len(self.page_rows)
            self.count_is_exact = True
        else:
            # Unordered: the database may count matches by the cheapest index instead of the page's order.
            self.count = queryset.order_by()[: self.COUNT_LIMIT + 1].count()
            self.count_is_exact = self.count <= self.COUNT_LIMIT
            self.count = min(self.count, self.COUNT_LIMIT)
        self.page_size_used = page_size
        return self.page_rows

    def _page_link(self, number: int | None) -> str | None:
        if number is None:
            return None
        from rest_framework.utils.urls import replace_query_param

        return replace_query_param(self.request.build_absolute_uri(), self.page_query_param, number)

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.count,
                "count_is_exact": self.count_is_exact,
                "next": self._page_link(self.page_number + 1 if self.has_next else None),
                "previous": self._page_link(self.page_number - 1 if self.page_number > 1 else None),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["count", "results"],
            "properties": {
                "count": {"type": "integer"},
                "count_is_exact": {"type": "boolean"},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }
