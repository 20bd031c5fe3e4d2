"""Indexes the ORM cannot describe on its own."""

from __future__ import annotations

from django.db import models
from django.db.backends.ddl_references import Statement, Table


class TokenArrayIndex(models.Index):
    """GIN over a space-separated text column split into an array, so one token is found by `@>`.

    On PostgreSQL the index is `USING gin (string_to_array(column, ' '))`; other
    databases get a plain index on the column (SQLite has no array type).
    """

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        column = model._meta.get_field(self.fields[0]).column
        return Statement(
            "CREATE INDEX %(name)s ON %(table)s USING gin (string_to_array(%(column)s, ' '))",
            name=schema_editor.quote_name(self.name),
            table=Table(model._meta.db_table, schema_editor.quote_name),
            column=schema_editor.quote_name(column),
        )
