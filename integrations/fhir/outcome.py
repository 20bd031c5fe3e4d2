"""OperationOutcome: how every FHIR error and warning is reported, with FHIRPath-style element paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _


@dataclass(frozen=True)
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # IssueType: invalid, required, not-found, not-supported, conflict, processing, ...
    diagnostics: str
    expression: tuple[str, ...] = ()

    def as_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue

    def under(self, prefix: str) -> Issue:
        """The same issue with its paths placed under `prefix` (e.g. `Bundle.entry[3].resource`)."""
        paths = tuple(f"{prefix}.{path}" if path else prefix for path in self.expression) or (prefix,)
        return Issue(self.severity, self.code, self.diagnostics, paths)


@dataclass
class FhirError(Exception):
    """A request FHIR refuses: the HTTP status and the issues that explain it."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    # Raised while applying (a reference not found, a conflict) rather than because of what was sent.
    applying: bool = False

    def __str__(self) -> str:
        return "; ".join(f"{', '.join(issue.expression)}: {issue.diagnostics}" for issue in self.issues)

    @classmethod
    def single(cls, status: int, code: str, diagnostics: str, *expression: str) -> FhirError:
        return cls(status, [Issue("error", code, diagnostics, tuple(expression))])


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    if not issues:
        issues = [Issue("information", "informational", _("All OK"))]
    return {"resourceType": "OperationOutcome", "issue": [issue.as_fhir() for issue in issues]}


def fhir_path(location: tuple[Any, ...], root: str) -> str:
    """Pydantic's error location `('entry', 3, 'resource', 'subject')` → `Bundle.entry[3].resource.subject`."""
    path = root
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("__root__",):
            continue
        else:
            path += f".{part}"
    return path


def validation_issues(error, root: str) -> list[Issue]:
    """Issues from a `pydantic.ValidationError` raised by a fhir.resources model."""
    issues = []
    for detail in error.errors():
        message = detail.get("msg", "")
        kind = detail.get("type", "")
        code = "required" if kind == "missing" else "structure" if kind == "extra_forbidden" else "value"
        if kind == "extra_forbidden":
            message = _("Unknown element.")
        issues.append(Issue("error", code, message, (fhir_path(tuple(detail.get("loc", ())), root),)))
    return issues


def nul_location(data: Any, location: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """Where a string in parsed JSON holds a NUL character (FHIR strings may not; no text column can store one)."""
    if isinstance(data, str):
        return location if "\x00" in data else None
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        if (found := nul_location(value, (*location, key))) is not None:
            return found
    return None


def nul_issue(raw: bytes | str, data: Any) -> Issue | None:
    """An issue naming the element that holds a NUL character, if any (cheap when the text has none)."""
    marker = b"\\u0000" if isinstance(raw, bytes) else "\\u0000"
    if marker not in raw:
        return None
    location = nul_location(data)
    if location is None:
        return None
    root = data.get("resourceType", "") if isinstance(data, dict) else ""
    return Issue(
        "error", "value", _("Strings may not contain the NUL character (\\u0000)."), (fhir_path(location, str(root)),)
    )


def model_issues(model: Any, data: Any, root: str) -> list[Issue]:
    """Validate `data` with a fhir.resources model: no issues, or the issues by element path.

    A contained resource of a type R4B does not know makes the models raise a plain KeyError, not
    a validation error: it is reported on that resource's `resourceType` instead.
    """
    from pydantic import ValidationError

    try:
        model.model_validate(data)
    except ValidationError as error:
        return validation_issues(error, root)
    except (KeyError, ValueError, TypeError):
        return [_unknown_contained(data, root)]
    return []


def _unknown_contained(data: Any, root: str) -> Issue:
    from fhir.resources.R4B import get_fhir_model_class

    contained = data.get("contained") if isinstance(data, dict) else None
    for index, resource in enumerate(contained if isinstance(contained, list) else []):
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        try:
            get_fhir_model_class(kind)
        except (KeyError, ValueError, TypeError):
            return Issue(
                "error",
                "not-supported",
                _("Unknown resource type %(type)s.") % {"type": kind},
                (f"{root}.contained[{index}].resourceType",),
            )
    return Issue("error", "structure", _("A resource inside this one is of a type FHIR R4 does not know."), (root,))
