"""Planning a FHIR write: the shape of each bundle entry, then one R4B validation of the whole payload.

Nothing here touches the database; problems are recorded on the entries (or returned for the bundle
itself) so a batch can answer each entry and a transaction can refuse them all at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from fhir.resources.R4B import get_fhir_model_class

from integrations.fhir.outcome import Issue, model_issues
from integrations.fhir.registry import BUNDLE_TYPES

STORED_TYPES = BUNDLE_TYPES


@dataclass
class Entry:
    """One write asked for: a bundle entry, or the single resource of POST/PUT Patient."""

    index: int | None
    method: str
    url: str
    resource: dict | None
    full_url: str = ""
    if_none_exist: str = ""
    issues: list[Issue] = field(default_factory=list)
    skipped: str = ""

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]" if self.index is not None else self.resource_type

    @property
    def resource_path(self) -> str:
        return f"{self.path}.resource" if self.index is not None else self.resource_type

    @property
    def resource_type(self) -> str:
        return (self.resource or {}).get("resourceType", "")

    @property
    def url_target(self) -> tuple[str, str, str]:
        """(type, id, query) of `request.url`: `Patient/123` → id, `Patient?identifier=...` → query."""
        path, _question, query = self.url.strip("/").partition("?")
        kind, _slash, resource_id = path.partition("/")
        return kind, resource_id, query

    @property
    def validatable(self) -> bool:
        """Checked against the R4B models: a resource the archive keeps, in an entry of the right shape."""
        return self.resource is not None and not self.issues and not self.skipped


def entry_plan(index: int | None, raw: Any) -> Entry:
    """Check the shape of one bundle entry; problems are recorded on it, not raised."""
    raw = raw if isinstance(raw, dict) else {}
    request = raw.get("request") or {}
    resource = raw.get("resource")
    entry = Entry(
        index=index,
        method=(request.get("method") or "").upper(),
        url=request.get("url") or "",
        resource=resource if isinstance(resource, dict) else None,
        full_url=raw.get("fullUrl") or "",
        if_none_exist=request.get("ifNoneExist") or "",
    )
    if not request:
        entry.issues.append(
            Issue("error", "required", _("A transaction or batch entry needs a request."), (f"{entry.path}.request",))
        )
        return entry
    if entry.method not in ("POST", "PUT") or "$" in entry.url:
        entry.issues.append(
            Issue(
                "error",
                "not-supported",
                _("Only POST and PUT entries are accepted; %(method)s %(url)s is not supported.")
                % {"method": entry.method or "-", "url": entry.url},
                (f"{entry.path}.request",),
            )
        )
        return entry
    if entry.resource is None:
        entry.issues.append(Issue("error", "required", _("This entry has no resource."), (f"{entry.path}.resource",)))
        return entry
    kind, resource_id, query = entry.url_target
    if kind != entry.resource_type:
        entry.issues.append(
            Issue(
                "error",
                "invalid",
                _("request.url names %(url)s but the resource is a %(type)s.")
                % {"url": kind, "type": entry.resource_type},
                (f"{entry.path}.request.url",),
            )
        )
        return entry
    if entry.resource_type not in STORED_TYPES:
        entry.skipped = _("%(type)s resources are not kept by this archive; the entry was skipped.") % {
            "type": entry.resource_type
        }
        return entry
    if entry.method == "POST" and (resource_id or query):
        entry.issues.append(
            Issue("error", "invalid", _("POST goes to the resource type alone."), (f"{entry.path}.request.url",))
        )
    if entry.method == "PUT" and not (resource_id or query):
        entry.issues.append(
            Issue("error", "invalid", _("PUT needs an id or a search."), (f"{entry.path}.request.url",))
        )
    if entry.method == "PUT" and query and entry.resource_type != "Patient":
        entry.issues.append(
            Issue(
                "error",
                "not-supported",
                _("Conditional update is supported for Patient only."),
                (f"{entry.path}.request.url",),
            )
        )
    if entry.if_none_exist and entry.resource_type != "Patient":
        entry.issues.append(
            Issue(
                "error",
                "not-supported",
                _("Conditional create is supported for Patient only."),
                (f"{entry.path}.request.ifNoneExist",),
            )
        )
    return entry


def bundle_validate(data: dict, entries: dict[int, Entry]) -> list[Issue]:
    """Validate the Bundle with the R4B models; returns issues of the bundle's own elements.

    Problems inside an entry's resource are added to that entry (a batch answers them one by one).
    Resources of entries already refused or skipped, and of raw entries not in `entries`, are left
    out: they are not stored, and a resource type R4B does not know cannot be validated at all.
    The Bundle is checked without its resources, then each resource with its own model: the same
    models and rules as validating them inside the Bundle, without looking up each resource's model
    class by name on the way.
    """
    raw_entries = data.get("entry")
    copy = {key: value for key, value in data.items() if key != "entry"}
    if isinstance(raw_entries, list):
        copy["entry"] = [
            {key: value for key, value in raw.items() if key != "resource"} if isinstance(raw, dict) else raw
            for raw in raw_entries
        ]
    elif raw_entries is not None:
        copy["entry"] = raw_entries
    own = _bundle_issues(copy)
    if isinstance(raw_entries, list):
        for index in range(len(raw_entries)):
            if index in entries:
                resource_validate(entries[index])
    return own


def _bundle_issues(bundle: dict) -> list[Issue]:
    """The issues of a Bundle whose entries carry no resources, each distinct entry validated once.

    The entries of a transaction are mostly alike (`{"request": {"method": "POST", "url":
    "Observation"}}` a dozen times), and R4B validates each entry on its own, so a Bundle with one
    of each is valid exactly when the whole one is. Only when it is not is the whole Bundle
    validated, for the issues to name the entries as sent.
    """
    model = get_fhir_model_class("Bundle")
    entries = bundle.get("entry")
    distinct = _distinct(entries) if isinstance(entries, list) else None
    if distinct is None or len(distinct) == len(entries):
        return model_issues(model, bundle, "Bundle")
    if not model_issues(model, {**bundle, "entry": distinct}, "Bundle"):
        return []
    return model_issues(model, bundle, "Bundle")


def _distinct(items: list) -> list | None:
    """`items` without repeats, by their JSON text (which tells 1, 1.0 and true apart); None if one is not JSON."""
    seen: dict[str, Any] = {}
    try:
        for item in items:
            seen.setdefault(json.dumps(item, separators=(",", ":")), item)
    except (TypeError, ValueError):
        return None
    return list(seen.values())


def resource_validate(entry: Entry) -> None:
    """Validate the single resource of a POST or PUT with its R4B model; problems are added to the entry."""
    if not entry.validatable:
        return
    entry.issues.extend(model_issues(get_fhir_model_class(entry.resource_type), entry.resource, entry.resource_path))
