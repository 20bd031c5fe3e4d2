"""PostgreSQL side of the demo load: COPY in CSV, reserved primary keys, and secondary indexes that a
bulk load drops and rebuilds."""

from __future__ import annotations

import csv
import io
import json
import re

from django.db import connection, models, transaction
from django.db.models import Max

from patients.demo.generate import FIELDS, NULLABLE, Batch
from patients.models import Encounter, Patient

_NULL = r"\N"
_COPY_BUFFER = 1 << 20
_CREATE_INDEX = re.compile(r'^CREATE INDEX "(?P<name>[^"]+)" ON "(?P<table>[^"]+)"')
_ADD_FOREIGN_KEY = re.compile(r'^ALTER TABLE "(?P<table>[^"]+)" ADD CONSTRAINT "(?P<name>[^"]+)" FOREIGN KEY')


class ConcurrentWrite(Exception):
    """Another connection wrote patients or encounters while the demo was being loaded."""


class PostgresWriter:
    """COPY in CSV; primary keys of patients and encounters are reserved from their sequences batch by batch."""

    overlaps = True  # encoding needs no database, so the next batch is prepared while this one is written

    def __init__(self, tables: list[tuple[type, str, list[models.Field]]]):
        quote = connection.ops.quote_name
        self.copies = []
        for model, table, fields in tables:
            columns = ", ".join(quote(field.column) for field in fields)
            sql = f"COPY {quote(table)} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '{_NULL}')"
            nullable = [FIELDS[model].index(name) for name in NULLABLE.get(model, ())]
            as_json = [i for i, field in enumerate(fields) if isinstance(field, models.JSONField)]
            self.copies.append((model, sql, nullable, as_json))
        self.sequences = {}
        with connection.cursor() as cursor:
            for model in (Patient, Encounter):
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [model._meta.db_table])
                self.sequences[model] = cursor.fetchone()[0]

    def next_ids(self) -> tuple[int, int]:
        return self._next_value(Patient), self._next_value(Encounter)

    def _next_value(self, model) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT last_value, is_called FROM {self.sequences[model]}")  # noqa: S608 (catalog name)
            last_value, is_called = cursor.fetchone()
        top = model.objects.aggregate(top=Max("id"))["top"] or 0
        return max(last_value + 1 if is_called else last_value, top + 1)

    def encode(self, batch: Batch) -> list[bytes]:
        """CSV for each table. Runs in the generating thread, so it must not touch the database."""
        encoded, json_text = [], {}
        for model, _sql, nullable, as_json in self.copies:
            rows = batch.rows[model]
            if nullable or as_json:
                rows = [_clean(row, nullable, as_json, json_text) for row in rows]
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(rows)
            encoded.append(buffer.getvalue().encode())
        return encoded

    def write(self, batch: Batch, patient_id: int, encounter_id: int, payload: list[bytes]) -> None:
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            # Writers of patients or encounters wait until this batch commits, so the ids stay its own.
            tables = f"{quote(Patient._meta.db_table)}, {quote(Encounter._meta.db_table)}"
            cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute("SET LOCAL synchronous_commit = off")  # a lost batch is simply loaded again
            for model, first, count in (
                (Patient, patient_id, batch.patients),
                (Encounter, encounter_id, batch.encounters),
            ):
                if self._next_value(model) > first:
                    raise ConcurrentWrite(model._meta.verbose_name_plural)
                if count:
                    cursor.execute("SELECT setval(%s, %s)", [self.sequences[model], first + count - 1])
            for (_model, sql, _nullable, _as_json), data in zip(self.copies, payload, strict=True):
                if data:
                    cursor.copy_expert(sql, io.BytesIO(data), _COPY_BUFFER)

    def finish(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(model._meta.db_table) for model in FIELDS))


def _clean(row: tuple, nullable: list[int], as_json: list[int], json_text: dict) -> list:
    values = list(row)
    for i in nullable:
        if values[i] is None:
            values[i] = _NULL
    for i in as_json:
        value = values[i]
        # Herb lists are shared objects from `data`, so each is turned into JSON once per batch.
        if id(value) not in json_text:
            json_text[id(value)] = (value, json.dumps(value, ensure_ascii=False))
        values[i] = json_text[id(value)][1]
    return values


class SecondaryIndexes:
    """The indexes and constraints of the demo tables that a bulk load drops and builds again at the end.

    These are the non-unique indexes and the foreign keys, as Django declares them, and the unique
    constraints on the random `uuid` columns. Keeping them up to date row by row is several times
    slower than building them once: random inserts into indexes larger than the buffer cache also
    flood the WAL with full-page images. The other unique indexes (MRN, national ID, identifiers,
    external ids) stay, so those duplicates are still refused during the load.

    The definitions come from the models rather than from a saved copy, so a run that was killed
    half-way is repaired by the next one: `restore` runs first in every run and creates only what is
    missing.
    """

    def __init__(self):
        quote = connection.ops.quote_name
        with connection.schema_editor(collect_sql=True, atomic=False) as editor:
            for model in FIELDS:
                if not model._meta.auto_created:  # the tags table comes with its patient model
                    editor.create_model(model)
        self.statements: dict[str, tuple[str, str, str]] = {}  # name → (kind, table, statement)
        for statement in editor.collected_sql:
            if match := _CREATE_INDEX.match(statement):
                self.statements[match["name"]] = ("index", match["table"], statement)
            elif match := _ADD_FOREIGN_KEY.match(statement):
                self.statements[match["name"]] = ("constraint", match["table"], statement)
        for model in FIELDS:
            if any(field.name == "uuid" and field.unique for field in model._meta.fields):
                table = model._meta.db_table
                # Django declares `unique=True` inline, so PostgreSQL named the constraint <table>_<column>_key.
                name = f"{table}_uuid_key"
                statement = f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} UNIQUE ({quote('uuid')})"
                self.statements[name] = ("constraint", table, statement)

    def _present(self) -> tuple[set[str], set[str]]:
        """(objects that exist under the declared names, declared objects whose job is done)."""
        names = list(self.statements)
        tables = sorted({table for _kind, table, _statement in self.statements.values()})
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'i' AND relname = ANY(%s) AND pg_table_is_visible(oid) "
                "UNION SELECT conname FROM pg_constraint WHERE contype IN ('f', 'u') AND conname = ANY(%s)",
                [names, names],
            )
            existing = {name for (name,) in cursor.fetchall()}
            # A unique index on `uuid` under another name does the job of the declared constraint.
            cursor.execute(
                "SELECT t.relname || '_uuid_key' FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                "WHERE i.indisunique AND i.indnkeyatts = 1 AND a.attname = 'uuid' AND t.relname = ANY(%s) "
                "AND pg_table_is_visible(t.oid)",
                [tables],
            )
            return existing, existing | {name for (name,) in cursor.fetchall()}

    def drop(self) -> None:
        quote, (existing, _done) = connection.ops.quote_name, self._present()
        with transaction.atomic(), connection.cursor() as cursor:
            _run_deferred_checks(cursor)
            for name, (kind, table, _statement) in self.statements.items():
                if name in existing and kind == "constraint":
                    cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
                elif name in existing:
                    cursor.execute(f"DROP INDEX {quote(name)}")

    def restore(self) -> int:
        """Create the indexes and constraints that are missing; returns how many."""
        _existing, done = self._present()
        missing = [statement for name, (_kind, _table, statement) in self.statements.items() if name not in done]
        if missing:
            with connection.cursor() as cursor:
                _run_deferred_checks(cursor)
                # Sorting for an index build in memory instead of on disk; this session only.
                cursor.execute("SET maintenance_work_mem = '512MB'")
                for statement in missing:
                    cursor.execute(statement)
                cursor.execute("RESET maintenance_work_mem")
        return len(missing)


def _run_deferred_checks(cursor) -> None:
    # A table with foreign-key checks still pending cannot be altered. They are pending only when the
    # caller keeps a transaction open around the load (tests do); batches commit their own.
    if connection.in_atomic_block:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
