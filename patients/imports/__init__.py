"""Reading patient spreadsheets: columns from Chinese or English headers, streamed rows, row checks, files out."""

from patients.imports.columns import TEMPLATE_HEADERS, ColumnMap, columns_map
from patients.imports.reading import ImportFileError, Sheet, sheet_open
from patients.imports.rows import Lookups, ParsedRow, RowError, row_parse, rows_parse

__all__ = [
    "TEMPLATE_HEADERS",
    "ColumnMap",
    "columns_map",
    "ImportFileError",
    "Sheet",
    "sheet_open",
    "Lookups",
    "ParsedRow",
    "RowError",
    "row_parse",
    "rows_parse",
]
