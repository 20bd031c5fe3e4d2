"""HTTP door for HL7 v2: POST one message or a batch, get the ACK(s) back as the body."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import parsers, renderers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from hcrm.rest import IntegrationKeyAuthentication, RolePermission
from integrations.hl7v2.pipeline import hl7_receive_detailed
from integrations.models import Transport

ER7 = "x-application/hl7-v2+er7"


class Hl7Parser(parsers.BaseParser):
    """The body as bytes: decoding is the pipeline's business (MSH-18 says how)."""

    media_type = ER7

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read() if stream is not None else b""


class Hl7TextParser(Hl7Parser):
    media_type = "text/plain"


class Hl7ApplicationParser(Hl7Parser):
    media_type = "application/hl7-v2"


class Hl7Renderer(renderers.BaseRenderer):
    media_type = ER7
    format = "hl7"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, bytes):
            return data
        # Errors before the pipeline ran (authentication, permission) come as the usual error body.
        return renderers.JSONRenderer().render(data)


class AlwaysEr7(DefaultContentNegotiation):
    """The answer is an ACK whatever the client's Accept header says."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class Hl7SubmitView(APIView):
    """Submit HL7 v2 messages with an integration key holding the `hl7.submit` scope."""

    authentication_classes = [IntegrationKeyAuthentication]
    permission_classes = [RolePermission]
    required_permissions = {"POST": ["integrations.submit_hl7"]}
    parser_classes = [Hl7Parser, Hl7TextParser, Hl7ApplicationParser]
    renderer_classes = [Hl7Renderer]
    content_negotiation_class = AlwaysEr7
    throttle_classes: list = []  # a HIS sends hundreds of messages a minute; the key is the limit

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if not isinstance(response.data, bytes):
            # Refused before the pipeline ran: the usual JSON error body.
            response.accepted_renderer = renderers.JSONRenderer()
            response.accepted_media_type = "application/json"
            response.content_type = "application/json"
        return response

    @extend_schema(
        operation_id="hl7_submit",
        summary=_("Submit HL7 v2 messages"),
        description=_(
            "The body is one HL7 v2 message, a batch (BHS/BTS) or a file (FHS/FTS), segments separated by CR. "
            "Each message is stored, applied and acknowledged; the response body holds one original-mode ACK "
            "per message, one after another. 200 when every message was accepted (AA), 400 when any "
            "was answered AE or AR (the ACKs say which and why), 503 when a message could not be stored."
        ),
        request={
            ER7: OpenApiTypes.BINARY,
            "text/plain": OpenApiTypes.BINARY,
            "application/hl7-v2": OpenApiTypes.BINARY,
        },
        responses={
            (200, ER7): OpenApiResponse(
                OpenApiTypes.BINARY,
                description=_("Every message accepted: AA acknowledgements."),
                examples=[
                    OpenApiExample(
                        "AA",
                        value="MSH|^~\\&|HCRM||HIS|TCMH|20250301083001+0800||ACK^A01^ACK|…|P|2.5\rMSA|AA|MSG0001\r",
                    )
                ],
            ),
            (400, ER7): OpenApiResponse(OpenApiTypes.BINARY, description=_("AE or AR acknowledgements with ERR.")),
            (503, ER7): OpenApiResponse(OpenApiTypes.BINARY, description=_("Not stored; send again later.")),
        },
    )
    def post(self, request):
        body = request.data if isinstance(request.data, bytes) else b""
        results = hl7_receive_detailed(body, transport=Transport.HTTP, peer=request.META.get("REMOTE_ADDR", ""))
        codes = {result.ack_code for result in results}
        if any(result.message_id is None for result in results) and codes - {"AA"}:
            code = status.HTTP_503_SERVICE_UNAVAILABLE
        elif codes == {"AA"}:
            code = status.HTTP_200_OK
        else:
            code = status.HTTP_400_BAD_REQUEST
        return Response(b"".join(result.ack for result in results), status=code, content_type=ER7)
