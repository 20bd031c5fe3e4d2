"""All network I/O with remote FHIR servers: explicit timeouts, one error type that says whether a retry can help."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

CONNECT_TIMEOUT = 5


class FhirClientError(Exception):
    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


@dataclass(frozen=True)
class Page:
    url: str
    raw: bytes
    bundle: dict

    @property
    def next_url(self) -> str:
        for link in self.bundle.get("link") or ():
            if link.get("relation") == "next" and link.get("url"):
                return link["url"]
        return ""


class FhirRemoteClient:
    """Reads search pages from one remote server; credentials come from the environment variable the remote names."""

    def __init__(self, remote, *, session: requests.Session | None = None) -> None:
        self.remote = remote
        self.base_url = remote.base_url.rstrip("/") + "/"
        self.session = session or requests.Session()
        self.timeout = (CONNECT_TIMEOUT, remote.timeout_seconds)

    def _auth(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        if self.remote.auth_kind == "none":
            return {}, None
        secret = os.environ.get(self.remote.secret_env or "", "")
        if not secret:
            raise FhirClientError(
                f"The environment variable {self.remote.secret_env or '(none named)'} holding the secret is not set.",
                retryable=False,
            )
        if self.remote.auth_kind == "bearer":
            return {"Authorization": f"Bearer {secret}"}, None
        return {}, (self.remote.username, secret)

    def search_url(self, resource_type: str, since: str | None) -> str:
        query = f"_sort=_lastUpdated&_count={self.remote.page_size}"
        if since:
            query = f"_lastUpdated=ge{since}&{query}"
        return f"{self.base_url}{resource_type}?{query}"

    def get_page(self, url: str) -> Page:
        """One searchset page; a `next` link on another host is refused so credentials never leave the remote."""
        if urlsplit(url).netloc != urlsplit(self.base_url).netloc:
            raise FhirClientError(f"Refusing to follow a link to another host: {url}", retryable=False)
        headers, auth = self._auth()
        headers["Accept"] = "application/fhir+json"
        try:
            response = self.session.get(url, headers=headers, auth=auth, timeout=self.timeout, allow_redirects=False)
        except requests.Timeout:
            raise FhirClientError(f"Timed out reading {url}", retryable=True) from None
        except requests.ConnectionError as error:
            raise FhirClientError(f"Cannot reach {url}: {error}", retryable=True) from None
        if response.status_code != 200:
            retryable = response.status_code in (408, 425, 429) or response.status_code >= 500
            raise FhirClientError(
                f"{url} answered {response.status_code}", retryable=retryable, status=response.status_code
            )
        try:
            bundle = json.loads(response.content.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            # A truncated body is usually a dropped connection: worth another try.
            raise FhirClientError(f"{url} did not answer with JSON", retryable=True) from None
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise FhirClientError(f"{url} did not answer with a Bundle", retryable=False)
        return Page(url=url, raw=response.content, bundle=bundle)
