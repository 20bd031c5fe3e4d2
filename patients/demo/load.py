"""Writes the demo hospital: departments, tags and staff through the ORM, patients in bulk.

Patients go in batches, one transaction each, so an interruption leaves whole batches and the next
run resumes after the last demo patient it finds. PostgreSQL gets each batch as CSV through COPY
while the next batch is generated in a background thread; SQLite gets plain multi-row INSERTs.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import NamedTuple

from auditlog.context import disable_auditlog
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.db.models import Max
from django.db.models.functions import Length
from django.utils.module_loading import autodiscover_modules

from hcrm.models import Department, User
from hcrm.roles import ROLE_CODES
from hcrm.services import counter_raise_to, staff_create
from patients.demo import data
from patients.demo.base import Doctor, World
from patients.demo.generate import FIELDS, Batch, generate_batch, mrn, patient_uuid, staff_plan
from patients.demo.postgres import ConcurrentWrite, PostgresWriter, SecondaryIndexes
from patients.models import Encounter, Patient, Tag
from patients.services.stats import patient_stats_recompute

_NAMESPACE = uuid.UUID("0b6f1d0e-2f55-4d3c-8f0e-6a0f6f7d2c41")
# Below this many new patients, keeping indexes up to date costs less than building them again.
BULK_MINIMUM = 100_000


# Other apps add their part of the demo (their `demo` module registers it with `demo_extension`): called
# with the seed once departments and staff exist, each returns a line for the summary.
DemoExtension = Callable[..., str]
_extensions: list[DemoExtension] = []


def demo_extension(extension: DemoExtension) -> DemoExtension:
    """Register another app's part of the demo hospital; it must be idempotent and not depend on patients."""
    if extension not in _extensions:
        _extensions.append(extension)
    return extension


class DemoError(Exception):
    """The demo cannot be loaded into this database as it is; the message says why."""


class SeedResult(NamedTuple):
    departments_created: int
    staff_created: int
    staff_total: int
    first_index: int  # first demo patient written by this run
    last_index: int  # highest demo patient number after this run
    rows: Counter  # rows written, by model
    seconds: float
    logins: list[tuple[str, str, str]]  # (username, role, password or a note)
    repaired: int  # indexes and foreign keys that an interrupted bulk load had left out, now rebuilt
    bulk: bool  # secondary indexes were rebuilt after the load instead of maintained during it
    extras: tuple[str, ...] = ()  # what other apps' parts of the demo did


def seed_demo(
    *,
    patients: int,
    seed: int,
    batch_size: int,
    progress: Callable[[int, int], Callable[[int], None]],
    bulk_minimum: int = BULK_MINIMUM,
) -> SeedResult:
    """Create what is missing of the demo hospital with `patients` demo patients; rerunning changes nothing."""
    started = time.monotonic()
    missing_roles = sorted(ROLE_CODES - set(Group.objects.filter(name__in=ROLE_CODES).values_list("name", flat=True)))
    if missing_roles:
        raise DemoError(f"Role groups are missing ({', '.join(missing_roles)}); run `manage.py migrate` first.")
    secondary = SecondaryIndexes() if connection.vendor == "postgresql" else None
    repaired = secondary.restore() if secondary else 0
    plan = staff_plan(seed)
    with disable_auditlog():
        departments, departments_created = _departments_ensure()
        tags = _tags_ensure()
        staff_created = _staff_ensure(plan, departments)
    world = _world(seed, plan, departments, tags)
    done = demo_patients_loaded(world.mrn_prefix)
    rows: Counter = Counter()
    bulk = False
    if patients > done:
        _check_mrns_free(world.mrn_prefix, done + 1, patients)
        # Rebuilding costs in proportion to everything in the tables, so only a load that at least
        # doubles them gains from it.
        bulk = secondary is not None and patients - done >= max(bulk_minimum, Patient.objects.count())
        update = progress(done, patients)
        rows = _load_patients(
            world, first_index=done + 1, last_index=patients, batch_size=batch_size, update=update,
            secondary=secondary if bulk else None,
        )  # fmt: skip
        counter_raise_to(name="mrn", value=patients)
        # Visits, spending and RFM groups, so segments work on the demo at once (the nightly task keeps them fresh).
        patient_stats_recompute()
    # Other apps' parts of the demo come last: they may name a demo patient (the portal's sign-in).
    autodiscover_modules("demo")
    extras = tuple(extension(seed=seed) for extension in _extensions)
    return SeedResult(
        departments_created, staff_created, len(plan), done + 1, max(done, patients), rows,
        time.monotonic() - started, _logins(plan), repaired, bulk, extras,
    )  # fmt: skip


# --- Departments, tags, staff ----------------------------------------------------------------


def _stable_uuid(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{kind}:{key}")


def _departments_ensure() -> tuple[dict[str, Department], int]:
    departments, created_count = {}, 0
    for spec in data.DEPARTMENTS:
        department, created = Department.objects.get_or_create(
            code=spec.code,
            defaults={
                "uuid": _stable_uuid("department", spec.code),
                "name": spec.name,
                "name_en": spec.name_en,
                "kind": spec.kind,
                "description": spec.description,
            },
        )
        if created:
            # auto_now fields ignore the values given on create; the timestamps belong to the demo too.
            Department.objects.filter(pk=department.pk).update(created_at=data.GO_LIVE, updated_at=data.GO_LIVE)
            created_count += 1
        departments[spec.code] = department
    return departments, created_count


def _tags_ensure() -> dict[str, int]:
    tags = {}
    for name, color in data.TAGS:
        tag, created = Tag.objects.get_or_create(
            name=name, defaults={"uuid": _stable_uuid("tag", name), "color": color}
        )
        if created:
            Tag.objects.filter(pk=tag.pk).update(created_at=data.GO_LIVE, updated_at=data.GO_LIVE)
        tags[name] = tag.pk
    return tags


def _staff_ensure(plan, departments: dict[str, Department]) -> int:
    existing = set(
        User.objects.filter(username__in=[member.username for member in plan]).values_list("username", flat=True)
    )
    encoded_password, created = None, 0
    for member in plan:
        if member.username in existing:
            continue
        user = staff_create(
            actor=None,
            username=member.username,
            password=None,
            full_name=member.full_name,
            roles=member.roles,
            departments=[departments[code] for code in member.departments],
            head_of=[departments[code] for code in member.head_of],
            uuid=_stable_uuid("user", member.username),
            title=member.title,
            specialties=member.specialties,
            is_renowned_expert=member.is_renowned_expert,
            employee_number=member.employee_number,
            phone=member.phone,
            is_staff=member.is_superuser,
            is_superuser=member.is_superuser,
            date_joined=data.GO_LIVE,
        )
        if member.is_demo_login:
            # One hash for all demo logins: hashing is deliberately slow and the password is public anyway.
            encoded_password = encoded_password or make_password(data.DEMO_PASSWORD)
            user.password = encoded_password
            user.save(update_fields=["password"])
        created += 1
    return created


def _logins(plan) -> list[tuple[str, str, str]]:
    logins = [member for member in plan if member.is_demo_login]
    passwords = dict(User.objects.filter(username__in=[m.username for m in logins]).values_list("username", "password"))
    verdicts: dict[str, bool] = {}
    table = []
    for member in logins:
        encoded = passwords.get(member.username, "")
        if encoded not in verdicts:
            verdicts[encoded] = check_password(data.DEMO_PASSWORD, encoded)
        table.append(
            (member.username, member.roles[0], data.DEMO_PASSWORD if verdicts[encoded] else "(changed since seeding)")
        )
    return table


def _world(seed: int, plan, departments: dict[str, Department], tags: dict[str, int]) -> World:
    users = {user.username: user for user in User.objects.filter(username__in=[m.username for m in plan])}
    doctors: dict[str, list[Doctor]] = {code: [] for code in departments}
    for member in plan:
        user = users.get(member.username)
        if user is None or "doctor" not in member.roles:
            continue
        fee = data.REGISTRATION_FEES.get("renowned" if user.is_renowned_expert else user.title, 20)
        for code in member.departments:
            doctors[code].append(Doctor(user.pk, user.full_name or user.username, fee))
    empty = sorted(code for code, members in doctors.items() if not members)
    if empty:
        raise DemoError(f"No demo doctor left in departments {', '.join(empty)}; restore them or use a fresh database.")
    return World(
        seed=seed,
        mrn_prefix=settings.MRN_PREFIX,
        departments={code: department.pk for code, department in departments.items()},
        department_names={code: department.name for code, department in departments.items()},
        doctors={code: tuple(members) for code, members in doctors.items()},
        tags=tags,
    )


# --- Patients --------------------------------------------------------------------------------


def _demo_mrns(prefix: str):
    return Patient.objects.annotate(mrn_length=Length("mrn")).filter(mrn__startswith=prefix, mrn_length=len(prefix) + 8)


def demo_patients_loaded(prefix: str) -> int:
    """The number of the last demo patient in the database (0 if none): a demo MRN whose public id is the demo's."""
    for number, public_id in _demo_mrns(prefix).order_by("-mrn").values_list("mrn", "uuid").iterator(chunk_size=200):
        digits = number[len(prefix) :]
        if digits.isdigit() and public_id == patient_uuid(int(digits)):
            return int(digits)
    return 0


def _check_mrns_free(prefix: str, first: int, last: int) -> None:
    taken = list(
        _demo_mrns(prefix)
        .filter(mrn__gte=mrn(prefix, first), mrn__lte=mrn(prefix, last))
        .values_list("mrn", flat=True)[:3]
    )
    if taken:
        raise DemoError(
            f"MRNs {', '.join(taken)} belong to patients registered after the demo was loaded, so demo patients "
            f"{first}..{last} cannot be added here; load the demo into a fresh database."
        )


def _national_ids_in_use() -> set[int]:
    taken = set()
    for value in (
        Patient.objects.exclude(national_id="").values_list("national_id", flat=True).iterator(chunk_size=20_000)
    ):
        if value[:17].isdigit():
            taken.add(int(value[:17]))
    return taken


def _load_patients(
    world: World, *, first_index: int, last_index: int, batch_size: int, update, secondary: SecondaryIndexes | None
) -> Counter:
    tables = [(model, *_table(model)) for model in FIELDS]
    writer = PostgresWriter(tables) if connection.vendor == "postgresql" else _InsertWriter(tables)
    taken = _national_ids_in_use()
    first_patient_id, first_encounter_id = writer.next_ids()

    def batches() -> Iterator[tuple[Batch, int, int, object]]:
        patient_id, encounter_id = first_patient_id, first_encounter_id
        for start in range(first_index, last_index + 1, batch_size):
            count = min(batch_size, last_index + 1 - start)
            batch = generate_batch(
                world, first_index=start, count=count, first_patient_id=patient_id,
                first_encounter_id=encounter_id, taken_ids=taken,
            )  # fmt: skip
            yield batch, patient_id, encounter_id, writer.encode(batch)
            patient_id, encounter_id = patient_id + batch.patients, encounter_id + batch.encounters

    written: Counter = Counter()
    if secondary is not None:
        secondary.drop()
    stream = _prefetched(batches()) if writer.overlaps else batches()
    try:
        for batch, patient_id, encounter_id, payload in stream:
            with transaction.atomic():
                try:
                    writer.write(batch, patient_id, encounter_id, payload)
                except ConcurrentWrite as error:
                    raise DemoError(
                        f"Something else wrote {error} during the load; run seed_demo again to resume."
                    ) from error
            written.update({model: len(rows) for model, rows in batch.rows.items()})
            update(batch.patients)
    finally:
        stream.close()  # stops the generating thread now, not when the traceback is collected
        if secondary is not None:
            secondary.restore()
    writer.finish()
    return written


def _prefetched(items: Iterator, depth: int = 1) -> Iterator:
    """Yield from `items`, producing the next one in a background thread while the caller writes this one."""
    channel: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def send(message) -> None:
        while not stop.is_set():
            try:
                channel.put(message, timeout=0.2)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for item in items:
                send(("item", item))
                if stop.is_set():
                    return
            send(("done", None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            send(("error", error))

    thread = threading.Thread(target=produce, name="seed-demo-generate", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = channel.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


def _table(model) -> tuple[str, list[models.Field]]:
    fields = [model._meta.get_field(name) for name in FIELDS[model]]
    # Columns left out are written as NULL, so only nullable ones may be; a new NOT NULL column on the
    # model must get a value in `generate` (the database would not apply Django's default).
    required = {field.attname for field in model._meta.concrete_fields if not field.null} - {"id"}
    missing = required - {field.attname for field in fields}
    if missing:
        raise ImproperlyConfigured(f"patients.demo FIELDS[{model.__name__}] lacks {sorted(missing)}")
    return model._meta.db_table, fields


class _InsertWriter:
    """Plain INSERTs with explicit values; `bulk_create` would overwrite the demo's created/updated times."""

    overlaps = False

    def __init__(self, tables: list[tuple[type, str, list[models.Field]]]):
        self.statements = []
        for model, table, fields in tables:
            columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
            placeholders = ", ".join(["%s"] * len(fields))
            # Table and column names come from the models, never from input.
            sql = f"INSERT INTO {connection.ops.quote_name(table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
            self.statements.append((model, fields, sql))

    def next_ids(self) -> tuple[int, int]:
        return tuple((model.objects.aggregate(top=Max("id"))["top"] or 0) + 1 for model in (Patient, Encounter))

    def encode(self, batch: Batch):
        return None

    def write(self, batch: Batch, patient_id: int, encounter_id: int, payload) -> None:
        with connection.cursor() as cursor:
            for model, fields, sql in self.statements:
                rows = batch.rows[model]
                if rows:
                    prepared = [
                        [f.get_db_prep_save(v, connection) for f, v in zip(fields, row, strict=True)] for row in rows
                    ]
                    cursor.executemany(sql, prepared)

    def finish(self) -> None:
        pass
