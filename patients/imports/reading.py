"""Rows of a CSV (UTF-8 with or without BOM, or GB18030) or XLSX file, streamed one at a time."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from django.utils.translation import gettext as _

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the binary .xls of Excel 97–2003
_CHUNK = 1 << 16


class ImportFileError(Exception):
    """The file as a whole cannot be read; the message says why, for the person who uploaded it."""


@dataclass
class Sheet:
    file_format: str  # "csv" or "xlsx"
    header: list[Any]
    # (row number as the spreadsheet shows it, header = 1; cell values)
    rows: Iterator[tuple[int, list[Any]]]
    encoding: str = ""


def file_format_detect(head: bytes, name: str) -> str:
    """ "xlsx" or "csv" from the file's first bytes (and its name only where the bytes cannot tell)."""
    lowered = name.lower()
    if head.startswith(_OLE_MAGIC) or lowered.endswith(".xls"):
        raise ImportFileError(_("Old Excel files (.xls) cannot be read; save the sheet as .xlsx or CSV."))
    if head.startswith(_ZIP_MAGIC):
        return "xlsx"
    if lowered.endswith(".xlsx"):
        raise ImportFileError(_("The file is named .xlsx but is not an Excel workbook."))
    if b"\x00" in head:
        raise ImportFileError(_("The file is neither CSV text nor an Excel workbook (.xlsx)."))
    return "csv"


def csv_encoding(stream: IO[bytes]) -> str:
    """UTF-8 (with its byte-order mark if present) when every byte decodes, otherwise GB18030 as Chinese Excel writes."""
    stream.seek(0)
    head = stream.read(len(codecs.BOM_UTF8))
    candidates = ["utf-8-sig"] if head == codecs.BOM_UTF8 else ["utf-8", "gb18030"]
    for encoding in candidates:
        stream.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while chunk := stream.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        stream.seek(0)
        return encoding
    raise ImportFileError(_("The file's text is neither UTF-8 nor GB18030; save it again as CSV (UTF-8)."))


def _csv_dialect(first_line: str) -> str:
    if "," not in first_line:
        for delimiter in ("\t", ";"):
            if delimiter in first_line:
                return delimiter
    return ","


def _csv_rows(text: IO[str], delimiter: str) -> Iterator[tuple[int, list[Any]]]:
    reader = csv.reader(text, delimiter=delimiter)
    try:
        # The header is row 1; the caller takes it first.
        yield from enumerate(reader, start=1)
    except csv.Error as error:
        raise ImportFileError(
            _("The CSV file is malformed near row %(row)s: %(reason)s") % {"row": reader.line_num, "reason": error}
        ) from None


@contextmanager
def sheet_open(stream: IO[bytes], *, name: str) -> Iterator[Sheet]:
    """Open `stream` (binary, seekable) as a sheet whose rows are read lazily; only the header is read here."""
    stream.seek(0)
    file_format = file_format_detect(stream.read(8), name)
    stream.seek(0)
    if file_format == "xlsx":
        with _xlsx_open(stream) as sheet:
            yield sheet
        return
    encoding = csv_encoding(stream)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        first_line = text.readline()
        text.seek(0)
        rows = _csv_rows(text, _csv_dialect(first_line))
        header = next(rows, (1, []))[1]
        yield Sheet(file_format="csv", header=header, rows=rows, encoding=encoding)
    finally:
        text.detach()  # the caller owns the stream


@contextmanager
def _xlsx_open(stream: IO[bytes]) -> Iterator[Sheet]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        # Read-only mode parses the sheet XML as it is iterated instead of building the whole workbook.
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError):
        raise ImportFileError(_("The file could not be read as an Excel workbook (.xlsx).")) from None
    try:
        worksheet = workbook.worksheets[0] if workbook.worksheets else None
        if worksheet is None:
            raise ImportFileError(_("The workbook has no worksheet."))
        # Some writers store a wrong sheet size; reading to the end of the data is safer.
        worksheet.reset_dimensions()
        values = worksheet.iter_rows(values_only=True)

        def rows() -> Iterator[tuple[int, list[Any]]]:
            try:
                for number, row in enumerate(values, start=2):
                    yield number, list(row)
            except (zipfile.BadZipFile, KeyError, ValueError) as error:
                raise ImportFileError(
                    _("The workbook is damaged and could not be read to the end: %(reason)s") % {"reason": error}
                ) from None

        try:
            header = list(next(values))
        except StopIteration:
            header = []
        except (zipfile.BadZipFile, KeyError, ValueError):
            raise ImportFileError(_("The file could not be read as an Excel workbook (.xlsx).")) from None
        yield Sheet(file_format="xlsx", header=header, rows=rows())
    finally:
        workbook.close()
