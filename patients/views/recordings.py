"""A contact's recording over HTTP, for the console and the API: permission-checked by the caller, audited here."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from hcrm.audit import Event, audit_read
from hcrm.http import FileSlice, RangeNotSatisfiable, byte_range
from patients.models import ContactEntry
from patients.services.contacts import RECORDING_FORMATS


def recording_response(request: HttpRequest, contact: ContactEntry) -> HttpResponseBase:
    """Stream a contact's recording, honouring one byte range so players can seek; every answer with audio is audited.

    A range that covers the whole file (the `bytes=0-` a browser's <audio> starts
    with) is answered 200 with the whole file and `Accept-Ranges: bytes`, as
    Apache does and browsers accept; later seeks get 206 with their part.
    """
    storage, name = contact.recording.storage, contact.recording.name
    try:
        size = storage.size(name)
    except OSError:
        raise Http404 from None
    extension = name.rsplit(".", 1)[-1].lower()
    etag = f'"{contact.uuid}-{size}"'
    header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        header = None  # the client holds another version: it gets the whole file
    try:
        requested = byte_range(header, size)
    except RangeNotSatisfiable:
        response: HttpResponseBase = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return _recording_headers(response, etag)
    if requested == (0, size - 1):
        requested = None
    try:
        file = storage.open(name, "rb")
    except OSError:
        raise Http404 from None
    content_type = RECORDING_FORMATS.get(extension, "application/octet-stream")
    filename = f"contact-{contact.uuid}.{extension}"
    if requested is None:
        response = FileResponse(file, content_type=content_type, filename=filename)
        details = {"part": "recording"}
    else:
        first, last = requested
        response = StreamingHttpResponse(
            FileSlice(file, first, last - first + 1), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Length"] = str(last - first + 1)
        response["Content-Disposition"] = f'inline; filename="{filename}"'
        details = {"part": "recording", "range": f"{first}-{last}"}
    audit_read(event=Event.VIEW, instance=contact, details=details)
    return _recording_headers(response, etag)


def _recording_headers(response: HttpResponseBase, etag: str) -> HttpResponseBase:
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    # A patient's voice must not linger in a shared workstation's browser cache.
    response["Cache-Control"] = "private, no-store"
    return response
