"""Bulk import, reading: the file in mapped chunks, with a thread reading ahead while the database works."""

from __future__ import annotations

import gzip
import hashlib
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext as _

from integrations.fhir.bulk.mapping import (
    BulkLineError,
    MappingProfile,
    PatientRow,
    fhir_validation_error,
    patient_row_from_resource,
)
from integrations.fhir.outcome import nul_issue

# --- Reading the file ------------------------------------------------------------------------------


def file_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, SHA-256) of the file as stored."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


@dataclass
class Chunk:
    """Mapped rows of one batch and where the stream stands after its last line."""

    rows: list[PatientRow]
    errors: list[dict]
    resource_counts: dict[str, int]
    end_offset: int  # bytes of the (decompressed) stream
    end_line: int
    file_position: int  # bytes of the file on disk, for progress


def read_chunks(
    path: Path,
    *,
    start_offset: int,
    start_line: int,
    batch_size: int,
    profile: MappingProfile,
    validate: bool,
    first_batch_size: int | None = None,
) -> Iterator[Chunk]:
    """Mapped chunks of `batch_size` rows; the first of at most `first_batch_size`, if given."""
    limit = min(batch_size, first_batch_size or batch_size)
    raw = open(path, "rb")  # noqa: SIM115 (closed below, also wrapped by gzip)
    stream = gzip.GzipFile(fileobj=raw, mode="rb") if path.name.endswith(".gz") else raw
    try:
        stream.seek(start_offset)
        offset, line_number = start_offset, start_line
        rows: list[PatientRow] = []
        keyed: dict[tuple, PatientRow] = {}
        errors: list[dict] = []
        counts: dict[str, int] = {}
        for line in stream:
            offset += len(line)
            line_number += 1
            text = line.strip()
            if not text:
                continue
            try:
                resource = json.loads(text)
            except (ValueError, UnicodeDecodeError) as error:
                errors.append(
                    {
                        "line": line_number,
                        "location": "(line)",
                        "message": _("Not valid JSON: %(error)s") % {"error": error},
                    }
                )
                continue
            kind = resource.get("resourceType") if isinstance(resource, dict) else None
            counts[str(kind)] = counts.get(str(kind), 0) + 1
            if (issue := nul_issue(text, resource)) is not None:
                errors.append({"line": line_number, "location": issue.expression[0], "message": issue.diagnostics})
                continue
            try:
                if validate and isinstance(resource, dict) and (problem := fhir_validation_error(resource)):
                    raise problem
                row = patient_row_from_resource(resource, profile=profile, line=line_number)
            except BulkLineError as error:
                errors.append({"line": line_number, "location": error.location, "message": error.message})
                continue
            holders = {id(keyed[key]): keyed[key] for key in row.identity_keys() if key in keyed}
            if len(holders) > 1:
                # The line ties together patients this batch holds apart: settle them first.
                yield Chunk(rows, errors, counts, offset - len(line), line_number - 1, raw.tell())
                rows, keyed, errors, counts = [], {}, [], {str(kind): 1}
                limit = batch_size
                holders = {}
            if holders:
                target = next(iter(holders.values()))
                target.absorb(row)
            else:
                target = row
                rows.append(row)
            for key in target.identity_keys():
                keyed[key] = target
            if len(rows) >= limit:
                yield Chunk(rows, errors, counts, offset, line_number, raw.tell())
                rows, keyed, errors, counts = [], {}, [], {}
                limit = batch_size
        if rows or errors or counts or line_number > start_line:
            yield Chunk(rows, errors, counts, offset, line_number, raw.tell())
    finally:
        stream.close()
        raw.close()


def read_ahead(chunks: Iterator[Chunk], depth: int = 2) -> Iterator[Chunk]:
    """Map the next batch in a thread while the database applies this one."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    return
            offer(done)
        except BaseException as error:  # handed to the consumer, which raises it
            offer(error)

    worker = threading.Thread(target=produce, name="fhir-bulk-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
