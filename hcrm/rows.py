"""Loading model rows by a fixed condition without building a queryset: for the per-message hot paths.

Compiling a queryset costs more Python time than PostgreSQL takes to answer a primary-key or
unique-index probe. Here the SELECT list and the value converters of a model are worked out once;
each call only runs the statement and builds the instances, as the ORM would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
import threading
import uuid
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.db.models import Field, Model
from django.utils import timezone

ModelT = TypeVar("ModelT", bound=Model)
_Converters = list[tuple[int, list[Callable], Any]]
_plans: dict[tuple[str, type[Model], str], tuple[str, _Converters]] = {}


# Statements prepared on each PostgreSQL connection (by the driver's connection object), by text.
_prepared: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
_prepared_lock = threading.Lock()
PREPARED_PER_CONNECTION = 500


def statement_run(cursor, sql: str, params: Sequence[Any]) -> None:
    """Run one of the statements built here; on PostgreSQL as a statement prepared once per connection.

    Their text is the same message after message (it comes from model metadata), and parsing and
    planning them again is about a third of what PostgreSQL spends on them. The PREPARE goes
    straight to the driver, so query logs and counts show each statement once, as before. A
    prepared statement outlives a rolled-back transaction, so the record of it here stays true.
    """
    database = _database()
    if database.vendor != "postgresql" or "%%" in sql:
        cursor.execute(sql, params)
        return
    raw = database.connection
    names = _prepared.get(raw)
    if names is None:
        with _prepared_lock:
            names = _prepared.setdefault(raw, {})
    name = names.get(sql)
    if name is None:
        if len(names) >= PREPARED_PER_CONNECTION:
            cursor.execute(sql, params)
            return
        name = f"hcrm_{hashlib.blake2b(sql.encode(), digest_size=10).hexdigest()}"
        numbers = itertools.count(1)
        with raw.cursor() as driver_cursor:
            driver_cursor.execute(f"PREPARE {name} AS {re.sub('%s', lambda _match: f'${next(numbers)}', sql)}")
        names[sql] = name
    cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}", params)


# Field classes whose `get_db_prep_save` hands PostgreSQL's driver a value of these types exactly as it
# is (None included): a str for a CharField, an int for an IntegerField or a key to an integer pk, ...
_PASSED_THROUGH: dict[type[Field], tuple[type, ...]] = {
    **dict.fromkeys((models.CharField, models.TextField, models.EmailField, models.SlugField), (str,)),
    **dict.fromkeys(
        (
            models.IntegerField,
            models.BigIntegerField,
            models.SmallIntegerField,
            models.PositiveIntegerField,
            models.PositiveSmallIntegerField,
            models.PositiveBigIntegerField,
            models.AutoField,
            models.BigAutoField,
        ),
        (int,),
    ),
    models.BooleanField: (bool,),
    models.DateField: (dt.date,),
    models.UUIDField: (uuid.UUID,),
}
_kept_types: dict[int, frozenset[type]] = {}  # by id(field): fields live as long as the process


def _kept(field: Field) -> frozenset[type]:
    """The value types `field` passes to PostgreSQL unchanged (empty: always prepare)."""
    kept = _kept_types.get(id(field))
    if kept is None:
        kind = type(field)
        if isinstance(field, models.ForeignKey):
            kind = type(field.target_field) if type(field) is models.ForeignKey else kind
        types = _PASSED_THROUGH.get(kind, ())
        kept = frozenset((*types, type(None))) if types else frozenset()
        _kept_types[id(field)] = kept
    return kept


def value_for_database(field: Field, value: Any, database) -> Any:
    """`field.get_db_prep_save(value, database)`, without the calls for a value PostgreSQL takes as it is.

    A row of the hot paths sends some fifty values; preparing each through Django's field methods
    costs more than sending it. Aware datetimes also go as they are (PostgreSQL adapts them itself).
    """
    if database.vendor == "postgresql":
        kind = type(value)
        kept = _kept_types.get(id(field))  # `_kept` inlined for the values already seen: called per value
        if kind in (kept if kept is not None else _kept(field)):
            return value
        if kind is dt.datetime and value.tzinfo is not None and type(field) is models.DateTimeField:
            return value
    return field.get_db_prep_save(value, database)


def _database():
    """This thread's default connection itself: each `connection.x` through the proxy costs a thread-local lookup."""
    return connections[DEFAULT_DB_ALIAS]


# Statement texts kept per shape; shapes that depend on a row count are many in theory, so each cache is bounded.
PLANS_KEPT = 1000


def _remembered(cache: dict, key: tuple, plan: Any) -> Any:
    if len(cache) < PLANS_KEPT:
        cache[key] = plan
    return plan


def _plan(model: type[Model], alias: str, database=None) -> tuple[str, _Converters]:
    database = database or _database()
    key = (database.vendor, model, alias)
    plan = _plans.get(key)
    if plan is None:
        quote = database.ops.quote_name
        fields = model._meta.concrete_fields
        columns = ", ".join(f"{alias}.{quote(field.column)}" for field in fields)
        converters: _Converters = []
        for index, field in enumerate(fields):
            column = field.get_col(model._meta.db_table)
            found = database.ops.get_db_converters(column) + column.get_db_converters(database)
            if found:
                converters.append((index, found, column))
        plan = (f"SELECT {columns} FROM {quote(model._meta.db_table)} {alias}", converters)  # noqa: S608 (model metadata)
        _plans[key] = plan
    return plan


def rows_load(model: type[ModelT], where: str, params: Sequence[Any], *, alias: str = "t") -> list[ModelT]:
    """Instances of `model` whose row matches `where` (SQL on table alias `alias`, %s placeholders)."""
    database = _database()
    select, converters = _plan(model, alias, database)
    with database.cursor() as cursor:
        statement_run(cursor, f"{select} WHERE {where}", params)
        fetched = cursor.fetchall()
    return [model.from_db(database.alias, None, _converted(row, converters, database)) for row in fetched]


def rows_load_joined(
    model: type[ModelT], joined: str, extra: Sequence[str], where: str, params: Sequence[Any], *, alias: str = "t"
) -> list[tuple[ModelT, tuple]]:
    """Like `rows_load`, with `joined` (a FROM-clause continuation) and `extra` columns returned beside each row."""
    database = _database()
    shape = (database.vendor, model, joined, tuple(extra), where, alias)
    plan = _joined_plans.get(shape)
    if plan is None:
        select, converters = _plan(model, alias, database)
        columns, source = select.split(" FROM ", 1)
        extra_sql = "".join(f", {column}" for column in extra)
        sql = f"{columns}{extra_sql} FROM {source} {joined} WHERE {where}"
        plan = _remembered(_joined_plans, shape, (sql, converters, len(model._meta.concrete_fields)))
    sql, converters, width = plan
    with database.cursor() as cursor:
        statement_run(cursor, sql, params)
        fetched = cursor.fetchall()
    return [
        (model.from_db(database.alias, None, _converted(row[:width], converters, database)), tuple(row[width:]))
        for row in fetched
    ]


_joined_plans: dict[tuple, tuple[str, _Converters, int]] = {}


def rows_load_together(
    models: Sequence[tuple[type[Model], str]],
    joined: str,
    where: str,
    params: Sequence[Any],
    *,
    extra: Sequence[str] = (),
) -> list[tuple[list[Model], tuple]]:
    """Instances of several models from one statement: the first model's table with its alias, then
    `joined` (a FROM-clause continuation joining the others by their aliases), one instance of each per
    row in the order given, and `extra` columns beside them. Placeholders come in the statement's order:
    `extra`'s, then `joined`'s, then `where`'s.
    """
    database = _database()
    shape = (database.vendor, tuple(models), joined, where, tuple(extra))
    plan = _together_plans.get(shape)
    if plan is None:
        selects, plans = [], []
        for model, alias in models:
            select, converters = _plan(model, alias, database)
            columns, _from = select.split(" FROM ", 1)
            selects.append(columns.removeprefix("SELECT "))
            plans.append((model, len(model._meta.concrete_fields), converters))
        first_model, first_alias = models[0]
        source = f"{database.ops.quote_name(first_model._meta.db_table)} {first_alias}"
        columns = ", ".join([*selects, *extra])
        sql = f"SELECT {columns} FROM {source} {joined} WHERE {where}"  # noqa: S608 (model metadata)
        plan = _remembered(_together_plans, shape, (sql, plans))
    sql, plans = plan
    with database.cursor() as cursor:
        statement_run(cursor, sql, params)
        fetched = cursor.fetchall()
    loaded = []
    for row in fetched:
        instances, start = [], 0
        for model, width, converters in plans:
            values = _converted(row[start : start + width], converters, database)
            instances.append(model.from_db(database.alias, None, values))
            start += width
        loaded.append((instances, tuple(row[start:])))
    return loaded


_together_plans: dict[tuple, tuple[str, list]] = {}


def _converted(row: Sequence[Any], converters: _Converters, database=None) -> list[Any]:
    values = list(row)
    database = database or _database()
    for index, functions, column in converters:
        value = values[index]
        for function in functions:
            value = function(value, column, database)
        values[index] = value
    return values


def row_update(instance: Model, fields: Sequence[str]) -> None:
    """Write `fields` of `instance` (and `updated_at` when the model has it) with one UPDATE by primary key.

    A write django-auditlog records row by row (a person's, to a registered model) goes through
    `save()` so that django-auditlog sees it.
    """
    statement = row_update_statement(instance, fields)
    if statement is None:
        names = _update_names(instance, fields)
        instance.save(update_fields=names)
        return
    with _database().cursor() as cursor:
        statement_run(cursor, *statement)


def row_update_statement(instance: Model, fields: Sequence[str]) -> tuple[str, list[Any]] | None:
    """The UPDATE `row_update` sends, as (SQL, params), to be sent with another statement; `updated_at`
    takes its new value on `instance` now. None when the write must go through `save()` (see `row_update`)."""
    if _needs_save(instance):
        return None
    database = _database()
    model = type(instance)
    meta = model._meta
    names = _update_names(instance, fields)
    shape = (database.vendor, model, tuple(names))
    plan = _update_plans.get(shape)
    if plan is None:
        quote = database.ops.quote_name
        written = [meta.get_field(name) for name in names]
        assignments = ", ".join(f"{quote(field.column)} = %s" for field in written)
        sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608 (model metadata)
        plan = _remembered(_update_plans, shape, (sql, written))
    sql, written = plan
    params = [value_for_database(field, field.pre_save(instance, add=False), database) for field in written]
    params.append(instance.pk)
    return sql, params


def _update_names(instance: Model, fields: Sequence[str]) -> list[str]:
    names = list(fields)
    if "updated_at" not in names and any(field.name == "updated_at" for field in instance._meta.concrete_fields):
        names.append("updated_at")
    return names


_update_plans: dict[tuple, tuple[str, list]] = {}


def row_insert(instance: Model) -> None:
    """INSERT a new `instance` with one statement, as `save(force_insert=True)` would, without the save machinery.

    A model that django-auditlog records row by row goes through `save()` while auditing is on.
    """
    database = _database()
    if _needs_save(instance):
        instance.save(force_insert=True)
        return
    sql, values = _insert_sql(instance)
    with database.cursor() as cursor:
        statement_run(cursor, sql, values)
        _inserted(instance, cursor.fetchone()[0])


def row_insert_new(instance: Model, *, conflict: Sequence[str]) -> bool:
    """INSERT a new `instance` like `row_insert` unless a row with the same values of the `conflict` fields
    (a unique constraint) is already stored: True when written, False (nothing written, no pk) when not.

    On PostgreSQL one INSERT … ON CONFLICT DO NOTHING: no savepoint is needed around it, as a key already
    taken is no error. A row inserted by a transaction not yet committed is waited for, then counts as
    stored if that transaction commits.
    """
    if _needs_save(instance) or not connection.features.supports_ignore_conflicts:
        try:
            with transaction.atomic():
                instance.save(force_insert=True)
        except IntegrityError:
            return False
        return True
    sql, values = _insert_sql(instance)
    shape = (sql, tuple(conflict))
    conflicting = _conflict_inserts.get(shape)
    if conflicting is None:
        quote = connection.ops.quote_name
        target = ", ".join(quote(instance._meta.get_field(name).column) for name in conflict)
        insert, returning = sql.rsplit(" RETURNING ", 1)
        conflicting = _remembered(
            _conflict_inserts, shape, f"{insert} ON CONFLICT ({target}) DO NOTHING RETURNING {returning}"
        )
    with connection.cursor() as cursor:
        statement_run(cursor, conflicting, values)
        row = cursor.fetchone()
    if row is None:
        return False
    _inserted(instance, row[0])
    return True


_conflict_inserts: dict[tuple, str] = {}


def rows_insert_missing(instances: Sequence[Model], *, batch_size: int = 500) -> int:
    """INSERT the new `instances` (of one model) that no stored row already holds by a unique constraint; how
    many were written. Like `bulk_create(ignore_conflicts=True)`, no signals are sent and no pk is set, but the
    rows written are counted by the statement itself (PostgreSQL: one INSERT … ON CONFLICT DO NOTHING RETURNING
    per batch) rather than by counting the table before and after.
    """
    if not instances:
        return 0
    database = _database()
    sql, _values = _insert_sql(instances[0])
    insert, returning = sql.rsplit(" RETURNING ", 1)
    head, row = insert.split(" VALUES ", 1)
    written = 0
    with database.cursor() as cursor:
        for start in range(0, len(instances), batch_size):
            batch = instances[start : start + batch_size]
            params = [value for instance in batch for value in _insert_sql(instance)[1]]
            rows = ", ".join([row] * len(batch))
            statement_run(cursor, f"{head} VALUES {rows} ON CONFLICT DO NOTHING RETURNING {returning}", params)
            written += len(cursor.fetchall())
    return written


def rows_insert(*instances: Model) -> None:
    """INSERT new instances (of any models) like `row_insert`, all with one statement on PostgreSQL.

    One statement fails or succeeds whole: an IntegrityError of any row leaves none of them written.
    """
    database = _database()
    if database.vendor != "postgresql" or any(_needs_save(instance) for instance in instances):
        for instance in instances:
            row_insert(instance)
        return
    parts, params = [], []
    for index, instance in enumerate(instances):
        sql, values = _insert_sql(instance)
        parts.append(f"inserted{index} AS ({sql})")
        params += values
    keys = ", ".join(f"(SELECT * FROM inserted{index})" for index in range(len(instances)))  # noqa: S608 (names made here)
    with database.cursor() as cursor:
        statement_run(cursor, f"WITH {', '.join(parts)} SELECT {keys}", params)
        for instance, key in zip(instances, cursor.fetchone(), strict=True):
            _inserted(instance, key)


def _needs_save(instance: Model) -> bool:
    from auditlog.context import auditlog_disabled
    from auditlog.registry import auditlog

    return not _database().features.can_return_columns_from_insert or (
        not auditlog_disabled.get() and auditlog.contains(type(instance))
    )


_insert_plans: dict[tuple, tuple[str, list]] = {}


def _insert_sql(instance: Model) -> tuple[str, list[Any]]:
    database = _database()
    meta = instance._meta
    shape = (database.vendor, type(instance), instance.pk is None)
    plan = _insert_plans.get(shape)
    if plan is None:
        quote = database.ops.quote_name
        fields = [field for field in meta.concrete_fields if not (field.primary_key and instance.pk is None)]
        columns = ", ".join(quote(field.column) for field in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders}) "  # noqa: S608 (model metadata)
            f"RETURNING {quote(meta.pk.column)}"
        )
        plan = _remembered(_insert_plans, shape, (sql, fields))
    sql, fields = plan
    return sql, [value_for_database(field, field.pre_save(instance, add=True), database) for field in fields]


def _inserted(instance: Model, key: Any) -> None:
    instance.pk = key
    instance._state.adding = False
    instance._state.db = _database().alias


@dataclass(frozen=True)
class Upserted(Generic[ModelT]):
    """What `rows_upsert` made of one row: the stored instance, and whether it was created or changed."""

    instance: ModelT
    created: bool
    changed: bool  # an existing row that held other values (and was written)


def rows_upsert(
    model: type[ModelT],
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str],
    conflict_where: str = "",
    owner: str,
    keep: Collection[str] = (),
    on_existing: Mapping[str, Any] | None = None,
    linked: Sequence[tuple[str, Sequence[Any]]] = (),
) -> list[Upserted[ModelT] | None]:
    """Insert `rows` or update the stored rows they name by `conflict`, with one INSERT … ON CONFLICT … RETURNING.

    For a model with `created_at`/`updated_at` (every BaseModel). Each row is a dict of field
    values; rows naming the same key are merged, the later one's values winning. An existing row
    is updated only when its `owner` column (`patient_id`) matches; otherwise its place in the
    result is None and nothing of it is written, so the caller can refuse it. On an existing row,
    `keep` columns stay as stored and `on_existing` columns take the given value instead of the
    row's; a row that differs in nothing is not written (on PostgreSQL; elsewhere it is rewritten
    as it is, `updated_at` included). `linked` are more writes, (SQL, params) each, one INSERT or
    UPDATE without RETURNING, sent in the same round trip where the database allows it; they see
    the tables as they stood before the statement, as the upsert itself does.

    Only for writes that are not audited row by row: no model signal is sent.
    """
    if not rows:
        return []
    meta = model._meta
    on_existing = dict(on_existing or {})

    # Each row as the column values an INSERT sends (defaults and timestamps filled in, as a model
    # instance would have them), without building the instance.
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    conflict_columns = [meta.get_field(name).attname for name in conflict]
    now = timezone.now()
    given: dict[tuple, dict[str, Any]] = {}  # what was sent for each key, rows naming one key merged
    merged: dict[tuple, dict[str, Any]] = {}
    positions: list[tuple] = []
    for values in rows:
        columns = _row_columns(model, fields, values, now)
        key = _row_key(columns, conflict_columns) or ("uuid", columns["uuid"])
        if key in merged:
            given[key] = {**given[key], **values}
            columns = {**_row_columns(model, fields, given[key], now), "uuid": merged[key]["uuid"]}
        else:
            given[key] = dict(values)
        merged[key] = columns
        positions.append(key)

    keyed = [key for key, columns in merged.items() if _row_key(columns, conflict_columns) is not None]
    keyed_columns = list(zip(*keyed, strict=True)) if keyed else []
    keyed_values = [list(dict.fromkeys(values)) for values in keyed_columns]
    database = _database()
    shape = (
        database.vendor,
        model,
        tuple(conflict),
        conflict_where,
        owner,
        frozenset(keep),
        frozenset(on_existing),
        tuple(sql for sql, _params in linked),
        len(merged),
        tuple(len(values) for values in keyed_values),
    )
    plan = _upsert_plans.get(shape)
    if plan is None:
        plan = _remembered(
            _upsert_plans,
            shape,
            _upsert_plan(model, conflict, conflict_where, owner, keep, on_existing, linked, len(merged), keyed_values),
        )
    sql, fields, on_existing_fields = plan

    params: list[Any] = []
    for columns in merged.values():
        params += [value_for_database(field, columns[field.attname], database) for field in fields]
    existing_params = [
        value_for_database(field, on_existing.get(field.name, on_existing.get(field.attname)), database)
        for field in on_existing_fields
    ]
    params += existing_params + existing_params
    if database.vendor == "postgresql":
        params = [*(value for _sql, values in linked for value in values), *params]
        params += [value for values in keyed_values for value in values]
        with database.cursor() as cursor:
            statement_run(cursor, sql, params)
            fetched = cursor.fetchall()
    else:
        with database.cursor() as cursor:
            for statement in linked:
                cursor.execute(*statement)
            cursor.execute(sql, params)
            fetched = [(*row, True) for row in cursor.fetchall()]

    _select, converters = _plan(model, "t")
    owner_name = meta.get_field(owner).attname
    results: dict[tuple, Upserted[ModelT]] = {}
    for row in fetched:
        instance = model.from_db(database.alias, None, _converted(row[:-1], converters))
        key = _conflict_key(instance, conflict) or ("uuid", instance.uuid)
        if key not in merged:
            continue
        if not row[-1]:  # as stored: unchanged, or another owner's
            if getattr(instance, owner_name) == merged[key][owner_name]:
                results[key] = Upserted(instance, created=False, changed=False)
            continue
        created = instance.created_at == now
        results[key] = Upserted(instance, created=created, changed=not created and instance.updated_at == now)
    return [results.get(key) for key in positions]


def _row_columns(model: type[Model], fields: list, values: dict[str, Any], now) -> dict[str, Any]:
    """The value of every column of a new `model` row given `values` (by field name or column name)."""
    plan, names = _column_plan(model, fields)
    if not names.issuperset(values):
        unknown = ", ".join(sorted(set(values) - names))
        raise TypeError(f"{model.__name__} has no field named {unknown}")
    columns: dict[str, Any] = {}
    for field, attname, name, stamped, related in plan:
        if stamped:
            value = now  # as `pre_save` sets them on insert, whatever was given
        elif attname in values:
            value = values[attname]
        elif name in values:
            value = values[name]
            if related and isinstance(value, Model):
                value = value.pk
        else:
            value = field.get_default()
        columns[attname] = value
    return columns


_column_plans: dict[type[Model], tuple[list[tuple], set[str]]] = {}


def _column_plan(model: type[Model], fields: list) -> tuple[list[tuple], set[str]]:
    """For each field (field, column name, field name, set to the time on insert, a relation), once per model;
    and every name a value may be given by."""
    found = _column_plans.get(model)
    if found is None:
        plan = [
            (
                field,
                field.attname,
                field.name,
                bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)),
                field.is_relation,
            )
            for field in fields
        ]
        names = {name for field in fields for name in (field.attname, field.name)}
        found = _column_plans[model] = (plan, names)
    return found


def _row_key(columns: dict[str, Any], conflict_columns: list[str]) -> tuple | None:
    """The values of the conflict columns, or None when one is NULL (such a row never conflicts)."""
    key = tuple(columns[name] for name in conflict_columns)
    return None if None in key else key


# The text of each shape of upsert (model, options, number of rows), built once per process.
_upsert_plans: dict[tuple, tuple[str, list, list]] = {}


def _upsert_plan(
    model: type[Model],
    conflict: Sequence[str],
    conflict_where: str,
    owner: str,
    keep: Collection[str],
    on_existing: Mapping[str, Any],
    linked: Sequence[tuple[str, Sequence[Any]]],
    count: int,
    keyed_values: list[list[Any]],
) -> tuple[str, list, list]:
    """(SQL, the fields each row sends, the fields `on_existing` sets) of one shape of `rows_upsert`."""
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    row_sql = f"({', '.join(['%s'] * len(fields))})"
    fixed = {*conflict, owner, "uuid", "created_at", "updated_at", *keep}
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    assignments, differs, on_existing_fields = [], [], []
    for field in fields:
        if field.name in fixed or field.attname in fixed:
            continue
        column = quote(field.column)
        if field.name in on_existing or field.attname in on_existing:
            on_existing_fields.append(field)
            assignments.append(f"{column} = %s")
            differs.append(f"{table}.{column} {distinct} %s")
        else:
            assignments.append(f"{column} = EXCLUDED.{column}")
            differs.append(f"{table}.{column} {distinct} EXCLUDED.{column}")
    updated = quote(meta.get_field("updated_at").column)
    owner_column = quote(meta.get_field(owner).column)
    target = ", ".join(quote(meta.get_field(name).column) for name in conflict)
    returning = ", ".join(quote(field.column) for field in meta.concrete_fields)
    changed = " OR ".join(differs) or "FALSE"
    insert = (
        f"INSERT INTO {table} ({', '.join(quote(field.column) for field in fields)}) "  # noqa: S608 (model metadata)
        f"VALUES {', '.join([row_sql] * count)} "
        f"ON CONFLICT ({target}){f' WHERE {conflict_where}' if conflict_where else ''} DO UPDATE SET "
    )
    if connection.vendor != "postgresql":
        # Without a data-modifying WITH, every stored row of the same owner is written (its
        # `updated_at` kept when nothing differs) so that RETURNING reports it.
        assignments.append(f"{updated} = CASE WHEN {changed} THEN EXCLUDED.{updated} ELSE {table}.{updated} END")
        sql = (
            f"{insert}{', '.join(assignments)} "
            f"WHERE {table}.{owner_column} = EXCLUDED.{owner_column} RETURNING {returning}"
        )
        return sql, fields, on_existing_fields
    # Only rows that differ are written; the others, and rows held by another owner, are read
    # back as they stood when the statement began (a data-modifying WITH sees that snapshot).
    assignments.append(f"{updated} = EXCLUDED.{updated}")
    sql = (
        f"{insert}{', '.join(assignments)} "
        f"WHERE {table}.{owner_column} = EXCLUDED.{owner_column} AND ({changed}) RETURNING {returning}"
    )
    prefix = "".join(f"linked{index} AS ({sql}), " for index, (sql, _params) in enumerate(linked))
    sql = f"WITH {prefix}written AS ({sql}) SELECT {returning}, TRUE FROM written"  # noqa: S608 (model metadata)
    if keyed_values:
        # Each column against its values (`external_id IN (…) AND source_system IN (…)`): probes of
        # the unique index whatever the planner believes about a sender's rows; a combination
        # nobody asked for is dropped by the caller.
        matches = " AND ".join(
            f"{quote(meta.get_field(name).column)} IN ({', '.join(['%s'] * len(values))})"
            for name, values in zip(conflict, keyed_values, strict=True)
        )
        sql += (
            f" UNION ALL SELECT {returning}, FALSE FROM {table} "  # noqa: S608 (model metadata)
            f"WHERE {matches} {f'AND {conflict_where} ' if conflict_where else ''}"
            f"AND ({target}) NOT IN (SELECT {target} FROM written)"
        )
    return sql, fields, on_existing_fields


def _conflict_key(instance: Model, conflict: Sequence[str]) -> tuple | None:
    """The values of the conflict columns, or None when one is NULL (such a row never conflicts)."""
    key = tuple(getattr(instance, instance._meta.get_field(name).attname) for name in conflict)
    return None if None in key else key
