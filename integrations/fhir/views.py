"""The FHIR R4 REST endpoints under /fhir/R4/: thin views over `reads` and `services`."""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import BaseRenderer
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from hcrm.models import User
from integrations.fhir import reads, registry, services
from integrations.fhir.outbound_map import instant
from integrations.fhir.outcome import FhirError, Issue, operation_outcome

FHIR_JSON = "application/fhir+json"
JSON_TYPES = {FHIR_JSON, "application/json", "application/json+fhir"}
ANY_TYPES = {"*/*", "application/*", ""}
FORMAT_ALIASES = {"json": FHIR_JSON, FHIR_JSON: FHIR_JSON, "application/json": "application/json"}


class FhirJsonRenderer(BaseRenderer):
    media_type = FHIR_JSON
    format = "json"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data, ensure_ascii=False).encode()


class FhirNegotiation(BaseContentNegotiation):
    """`_format` first, then Accept; JSON in any of its FHIR spellings, nothing else (406)."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        requested = request.query_params.get("_format")
        if requested is not None:
            media_type = FORMAT_ALIASES.get(requested.split(";")[0].strip())
            if media_type is None:
                raise exceptions.NotAcceptable(_("Only JSON is served (_format=json)."))
            return renderers[0], media_type
        accepted = [part.split(";")[0].strip().lower() for part in request.headers.get("Accept", "").split(",")]
        for media_type in accepted:
            if media_type in JSON_TYPES:
                return renderers[0], "application/json" if media_type == "application/json" else FHIR_JSON
            if media_type in ANY_TYPES:
                return renderers[0], FHIR_JSON
        raise exceptions.NotAcceptable(_("Only application/fhir+json is served."))


class FhirView(APIView):
    # The FHIR API describes itself with its CapabilityStatement (/fhir/R4/metadata), not in the OpenAPI schema.
    schema = None
    renderer_classes = [FhirJsonRenderer]
    content_negotiation_class = FhirNegotiation
    permission_classes = [IsAuthenticated]
    # Integrations send in bursts; only anonymous callers are throttled here.
    throttle_classes = [AnonRateThrottle]

    def respond(self, body: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
        media_type = getattr(self.request, "accepted_media_type", None) or FHIR_JSON
        response = HttpResponse(
            json.dumps(body, ensure_ascii=False), status=status, content_type=f"{media_type}; charset=utf-8"
        )
        for name, value in (headers or {}).items():
            response[name] = value
        return response

    def handle_exception(self, exc):
        if isinstance(exc, FhirError):
            return self.respond(operation_outcome(exc.issues), exc.status)
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            response = self.respond(operation_outcome([Issue("error", "login", str(exc.detail))]), 401)
            response["WWW-Authenticate"] = 'Api-Key, Bearer realm="fhir"'
            return response
        if isinstance(exc, exceptions.APIException):
            code = {403: "forbidden", 405: "not-supported", 406: "not-supported", 415: "not-supported"}.get(
                exc.status_code, "processing"
            )
            if getattr(self.request, "accepted_media_type", None) is None:
                self.request.accepted_media_type = FHIR_JSON
            return self.respond(operation_outcome([Issue("error", code, str(exc.detail))]), exc.status_code)
        return super().handle_exception(exc)

    @property
    def base(self) -> str:
        return self.request.build_absolute_uri("/fhir/R4/")

    def spec(self, resource_type: str, interaction: str) -> registry.ResourceSpec:
        spec = registry.RESOURCES.get(resource_type)
        if spec is None:
            raise FhirError.single(404, "not-supported", _("%(type)s is not supported here.") % {"type": resource_type})
        if interaction not in spec.interactions:
            raise exceptions.MethodNotAllowed(self.request.method)
        return spec

    def params(self) -> dict[str, list[str]]:
        return {key: self.request.query_params.getlist(key) for key in self.request.query_params}

    def body(self) -> bytes:
        content_type = (self.request.content_type or "").split(";")[0].strip().lower()
        if content_type not in JSON_TYPES:
            raise exceptions.UnsupportedMediaType(content_type or "-")
        return self.request.body

    def check_read(self, spec: registry.ResourceSpec) -> None:
        if not reads.may_read(self.request.user, spec):
            raise exceptions.PermissionDenied()

    def caller_for_write(self, raw: bytes) -> services.FhirCaller:
        """The caller, if they may write what the body holds; refused before anything is stored."""
        caller = services.caller_for(self.request.user)
        if self.request.user.has_perm(registry.SYSTEM_PERMISSION_WRITE):
            return caller
        if not isinstance(self.request.user, User):
            raise exceptions.PermissionDenied()
        try:
            data = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = {}
        resources = [data] if isinstance(data, dict) else []
        if isinstance(data, dict) and data.get("resourceType") == "Bundle":
            resources = [entry.get("resource") for entry in data.get("entry") or () if isinstance(entry, dict)]
        kinds = {r.get("resourceType") for r in resources if isinstance(r, dict)} & registry.BUNDLE_TYPES
        if not all(caller.may_write(kind) for kind in kinds or {"Patient"}):
            raise exceptions.PermissionDenied()
        return caller

    def peer(self) -> str:
        return self.request.META.get("REMOTE_ADDR", "")

    def written(self, received: services.Received) -> HttpResponse:
        if received.patient is None or received.status >= 300:
            return self.respond(received.body, received.status)
        patient = received.patient
        location = f"{self.base}Patient/{patient.uuid}"
        resource = reads.render(self.request.user, registry.RESOURCES["Patient"], patient)
        return self.respond(
            resource, received.status, {"Location": location, "Last-Modified": instant(patient.updated_at)}
        )


class MetadataView(FhirView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get(self, request):
        return self.respond(registry.capability_statement(self.base))


class SystemView(FhirView):
    def post(self, request):
        raw = self.body()
        caller = self.caller_for_write(raw)
        received = services.fhir_receive(raw=raw, caller=caller, interaction="bundle", peer=self.peer())
        return self.respond(received.body, received.status)


class TypeView(FhirView):
    def get(self, request, resource_type: str):
        spec = self.spec(resource_type, "search-type")
        self.check_read(spec)
        url = request.build_absolute_uri(request.path)
        return self.respond(
            reads.search_resources(principal=request.user, spec=spec, params=self.params(), url=url, base=self.base)
        )

    def post(self, request, resource_type: str):
        spec = self.spec(resource_type, "create")
        if resource_type == "Questionnaire":
            return self.questionnaire_import(spec)
        raw = self.body()
        caller = self.caller_for_write(raw)
        received = services.fhir_receive(
            raw=raw,
            caller=caller,
            interaction="create",
            resource_type=resource_type,
            url=resource_type,
            if_none_exist=request.headers.get("If-None-Exist", ""),
            peer=self.peer(),
        )
        return self.written(received)

    def questionnaire_import(self, spec: registry.ResourceSpec) -> HttpResponse:
        """A Questionnaire becomes a new questionnaire, or the next version of the one with its code."""
        user = self.request.user
        if not (
            user.has_perm(registry.SYSTEM_PERMISSION_WRITE) or all(user.has_perm(p) for p in spec.write_permissions)
        ):
            raise exceptions.PermissionDenied()
        raw = self.body()
        received = services.fhir_receive(
            raw=raw,
            caller=services.caller_for(user),
            interaction="create",
            resource_type="Questionnaire",
            url="Questionnaire",
            peer=self.peer(),
        )
        if received.status != 201:
            return self.respond(received.body, received.status)
        resource = received.body
        return self.respond(
            resource,
            201,
            {
                "Location": f"{self.base}Questionnaire/{resource['id']}",
                "Last-Modified": resource["meta"]["lastUpdated"],
            },
        )

    def put(self, request, resource_type: str):
        """Conditional update: PUT Patient?identifier=system|value."""
        self.spec(resource_type, "update")
        if not request.META.get("QUERY_STRING"):
            raise exceptions.MethodNotAllowed(request.method)
        raw = self.body()
        caller = self.caller_for_write(raw)
        received = services.fhir_receive(
            raw=raw,
            caller=caller,
            interaction="update",
            resource_type=resource_type,
            url=f"{resource_type}?{request.META['QUERY_STRING']}",
            peer=self.peer(),
        )
        return self.written(received)


class InstanceView(FhirView):
    def get(self, request, resource_type: str, resource_id: str):
        spec = self.spec(resource_type, "read")
        self.check_read(spec)
        return self.respond(reads.read_resource(principal=request.user, spec=spec, resource_id=resource_id))

    def put(self, request, resource_type: str, resource_id: str):
        self.spec(resource_type, "update")
        raw = self.body()
        caller = self.caller_for_write(raw)
        received = services.fhir_receive(
            raw=raw,
            caller=caller,
            interaction="update",
            resource_type=resource_type,
            url=f"{resource_type}/{resource_id}",
            peer=self.peer(),
        )
        return self.written(received)


class EverythingView(FhirView):
    def get(self, request, resource_id: str):
        spec = registry.RESOURCES["Patient"]
        self.check_read(spec)
        url = request.build_absolute_uri(request.path)
        return self.respond(
            reads.patient_everything(
                principal=request.user, resource_id=resource_id, params=self.params(), url=url, base=self.base
            )
        )
