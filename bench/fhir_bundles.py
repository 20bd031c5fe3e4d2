"""FHIR transaction bundles posted over HTTP to the FHIR facade under gunicorn, as a HIS posts them, beside
bare `fhir.resources` (R4B) validation of the same bundles and the CPU per resource in one process.

    python -m bench.run --reuse --only fhir-bundles [--fhir-bundles 1500] [--fhir-clients 6]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.fhir import ASSIGNER, patient_resource
from bench.harness import (
    CpuUse,
    Report,
    Timing,
    cpu_use,
    database_backends_cpu_seconds,
    free_port,
    in_threads,
    ms,
    parallel_seconds,
    server_cpu_seconds,
    start_server,
    stop_server,
    table,
    thread_client,
)

FHIR_JSON = "application/fhir+json"
BUNDLE_PATIENTS = 10_000_000  # bundle n brings patient_resource(BUNDLE_PATIENTS + n): none of the NDJSON file's
BUNDLE_SOURCE = "bench-his"  # the source system on the HIS's API key
BUNDLES = 1_500
CPU_BUNDLES = 200
# On 2 cores, with the machine least busy (load 1.5-4), 3 processes of 2 threads with 6 clients did best of
# 2x2 (4 clients), 3x2 (6), 4x2 (8), 2x4 (8) and 3x3 (9): 580-720 resources/s against 500-560 for 2x2 and
# 530-670 for the others. A process's second thread uses its core while the first waits for PostgreSQL, and
# a third process keeps both cores busy while two wait on their commits; more processes or threads only add
# CPU per resource, and clients beyond the server's threads only queue. Under heavy other load (load 7-8)
# every layout got about a quarter of the machine and their order was noise.
SERVER_WORKERS = 3
SERVER_THREADS = 2
CLIENTS = 6


def bundle_resource(index: int) -> dict:
    """Transaction bundle number `index` of the benchmark, the same on every run: a new patient with one visit."""
    rng = random.Random(f"bundle-{index}")
    patient = patient_resource(BUNDLE_PATIENTS + index)
    patient_ref = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}"
    encounter_ref = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}"
    day = dt.date(2026, 1, 1) + dt.timedelta(days=index % 300)
    identifier = patient["identifier"][0]
    entries = [
        {
            "fullUrl": patient_ref,
            "resource": patient,
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={identifier['system']}|{identifier['value']}"},
        },
        {
            "fullUrl": encounter_ref,
            "resource": {
                "resourceType": "Encounter",
                "identifier": [{"system": "urn:oid:2.16.156.99.7.2", "value": f"E{index:08d}"}],
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": patient_ref},
                "period": {"start": f"{day}T09:00:00+08:00", "end": f"{day}T09:30:00+08:00"},
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
    ]  # fmt: skip
    for number in range(rng.randint(1, 4)):
        entries.append(
            {
                "resource": {
                    "resourceType": "Condition",
                    "identifier": [{"system": "urn:oid:2.16.156.99.7.3", "value": f"C{index:08d}-{number}"}],
                    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": rng.choice(["I10", "E11.9", "J20.9", "K29.7"]), "display": "诊断"}]},
                    "subject": {"reference": patient_ref},
                    "encounter": {"reference": encounter_ref},
                    "recordedDate": f"{day}T09:10:00+08:00",
                },
                "request": {"method": "POST", "url": "Condition"},
            }
        )  # fmt: skip
    for number in range(rng.randint(7, 14)):
        entries.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "identifier": [{"system": "urn:oid:2.16.156.99.7.4", "value": f"O{index:08d}-{number}"}],
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
                    "subject": {"reference": patient_ref},
                    "encounter": {"reference": encounter_ref},
                    "effectiveDateTime": f"{day}T09:20:00+08:00",
                    "valueQuantity": {"value": round(rng.uniform(3.5, 9.0), 1), "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
                    "referenceRange": [{"low": {"value": 3.9, "unit": "mmol/L"}, "high": {"value": 6.1, "unit": "mmol/L"}}],
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        )  # fmt: skip
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


# --- posting, checking, measuring ---------------------------------------------------------------------


@dataclass
class Answers:
    """What the server answered to the bundles posted over HTTP."""

    statuses: Counter = field(default_factory=Counter)
    complete: int = 0
    entry_statuses: Counter = field(default_factory=Counter)
    # Answers other than a transaction-response Bundle with one entry per entry sent, first few kept.
    wrong: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _post_bundle(port: int, headers: dict, payload: bytes, entries: int, answers: Answers) -> None:
    """POST one bundle to the FHIR base on this thread's keep-alive connection and check the answer."""
    started = time.perf_counter()
    status, _headers, content = thread_client(port).send("POST", "/fhir/R4/", payload, headers)
    elapsed = (time.perf_counter() - started) * 1000
    try:
        body = json.loads(content)
    except ValueError:
        body = {}
    responses = [entry.get("response") or {} for entry in body.get("entry") or ()]
    complete = (
        status == 200
        and body.get("resourceType") == "Bundle"
        and body.get("type") == "transaction-response"
        and len(responses) == entries
    )
    with answers.lock:
        answers.statuses[status] += 1
        answers.entry_statuses.update(response.get("status", "-") for response in responses)
        answers.latencies_ms.append(elapsed)
        answers.complete += complete
        if not complete and len(answers.wrong) < 5:
            answers.wrong.append(f"{status}: {content[:300].decode(errors='replace')}")


def _post_all(port: int, key: str, payloads: list[bytes], clients: int, answers: Answers) -> float:
    """Post every bundle from `clients` connections at once, each taking the next bundle when answered; seconds."""
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "Authorization": f"Api-Key {key}"}
    work = [(payload, len(json.loads(payload)["entry"])) for payload in payloads]
    _started, seconds = in_threads(clients, work, lambda item: _post_bundle(port, headers, *item, answers))
    return seconds


def bundle_mrn(index: int) -> str:
    """The MRN bundle `index` gives its patient (see `patient_resource`)."""
    return f"B{BUNDLE_PATIENTS + index:09d}"


def first_new_bundle() -> int:
    """The bundle after the last one whose patient an earlier run left in the archive: every run posts new patients."""
    from patients.models import PatientIdentifier

    last = (
        PatientIdentifier.objects.filter(assigner=ASSIGNER, value__gte=bundle_mrn(0), value__lt="B1")
        .order_by("-value")
        .values_list("value", flat=True)
        .first()
    )
    return int(last[1:]) - BUNDLE_PATIENTS + 1 if last else 0


def archive_check(indexes: list[int]) -> dict[str, int]:
    """Bundles whose records the archive does not hold exactly once, by what is wrong; each must be 0.

    Every bundle brings a new patient, so the patient holding its MRN must be the only live one with it or
    with its national ID, and hold exactly the bundle's encounter, conditions and observations."""
    from django.db.models import Count

    from patients.models import Diagnosis, Encounter, LabResult, Patient, PatientIdentifier

    bundles = {bundle_mrn(index): bundle_resource(index) for index in indexes}
    holders: dict[str, set[int]] = {mrn: set() for mrn in bundles}
    for value, patient_id in PatientIdentifier.objects.filter(
        assigner=ASSIGNER, value__in=list(bundles), patient__merged_into__isnull=True
    ).values_list("value", "patient_id"):
        holders[value].add(patient_id)
    patient_of = {mrn: next(iter(ids)) for mrn, ids in holders.items() if len(ids) == 1}
    national_ids = {mrn: bundle["entry"][0]["resource"]["identifier"][1]["value"] for mrn, bundle in bundles.items()}
    same_national_id = Counter(
        Patient.objects.filter(national_id__in=list(national_ids.values()), merged_into__isnull=True).values_list(
            "national_id", flat=True
        )
    )
    ids = list(patient_of.values())

    def per_patient(model) -> dict[int, tuple[int, int]]:
        rows = model.objects.filter(patient_id__in=ids).values("patient_id")
        return {
            row["patient_id"]: (row["records"], row["linked"])
            for row in rows.annotate(records=Count("id"), linked=Count("encounter_id"))
        }

    encounters: dict[int, list[str]] = {}
    for patient_id, number in Encounter.objects.filter(patient_id__in=ids).values_list(
        "patient_id", "encounter_number"
    ):
        encounters.setdefault(patient_id, []).append(number)
    diagnoses, results = per_patient(Diagnosis), per_patient(LabResult)
    wrong: Counter = Counter()
    for mrn, bundle in bundles.items():
        patient_id = patient_of.get(mrn)
        if patient_id is None or same_national_id[national_ids[mrn]] != 1:
            wrong["patient missing or held twice"] += 1
            continue
        kinds = Counter(entry["resource"]["resourceType"] for entry in bundle["entry"])
        encounter_number = bundle["entry"][1]["resource"]["identifier"][0]["value"]
        if encounters.get(patient_id) != [encounter_number]:
            wrong["encounter missing or held twice"] += 1
        if diagnoses.get(patient_id) != (kinds["Condition"], kinds["Condition"]):
            wrong["conditions missing, doubled or off their encounter"] += 1
        if results.get(patient_id) != (kinds["Observation"], kinds["Observation"]):
            wrong["observations missing, doubled or off their encounter"] += 1
    labels = (
        "patient missing or held twice",
        "encounter missing or held twice",
        "conditions missing, doubled or off their encounter",
        "observations missing, doubled or off their encounter",
    )
    return {label: wrong[label] for label in labels}


def _validate(payload: bytes) -> None:
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(json.loads(payload))


def _his_key() -> tuple[object, str]:
    """An API key of the HIS allowed to write FHIR (scope `fhir.write`), as IT staff issue one; (key, its text)."""
    from hcrm.models import IntegrationKey

    return IntegrationKey.objects.create_key(
        name=f"bench HIS {int(time.time())}", scopes=["fhir.write"], source_system=BUNDLE_SOURCE
    )


def _in_process_cpu(key, indexes: list[int]) -> tuple[CpuUse, int, float]:
    """CPU of `fhir_receive` in this process for the bundles `indexes`, posted as the server would for `key`
    (after two more as warm-up); (CPU, resources, bare validation CPU seconds of the same bundles)."""
    from hcrm.rest import IntegrationPrincipal
    from integrations.fhir.services import caller_for, fhir_receive

    caller = caller_for(IntegrationPrincipal(key))
    payloads = [_payload(index) for index in indexes]
    for payload in payloads[:2]:
        fhir_receive(raw=payload, caller=caller, interaction="bundle")
    measured = payloads[2:]
    used = cpu_use(measured, lambda payload: fhir_receive(raw=payload, caller=caller, interaction="bundle"))
    started = time.process_time()
    for payload in measured:
        _validate(payload)
    validate_seconds = time.process_time() - started
    return used, sum(len(json.loads(payload)["entry"]) for payload in measured), validate_seconds


def _cpu_now(server) -> tuple[float | None, float | None, float | None]:
    """CPU used so far by the server's processes, the database's PostgreSQL backends and this process (the clients)."""
    return server_cpu_seconds(server), database_backends_cpu_seconds(), time.process_time()


def _cpu_row(label: str, seconds: float | None, resources: int) -> list[str]:
    return [label, "not measured" if seconds is None else f"{ms(seconds * 1000 / resources)} per resource"]


def _payload(index: int) -> bytes:
    return json.dumps(bundle_resource(index), ensure_ascii=False).encode()


@dataclass
class HttpRun:
    """The timed posts over HTTP: seconds, answers, load before, and the CPU (gunicorn processes, PostgreSQL
    backends of the database, the clients' process; None where not readable) spent meanwhile."""

    seconds: float
    answers: Answers
    load: tuple[float, float]
    spent: list[float | None]

    @property
    def cpu_seconds(self) -> float:
        return sum(part or 0.0 for part in self.spent)


def _http_run(
    secret: str, warm: list[int], payloads: list[bytes], *, workers: int, threads: int, clients: int
) -> HttpRun:
    """Start gunicorn, warm every server thread up with the `warm` bundles, then post and time `payloads`."""
    port = free_port()
    log = Path(os.environ.get("BENCH_LOG_DIR", tempfile.gettempdir())) / f"hcrm-bench-fhir-{os.getpid()}.log"
    # Database connections last the whole run (production renews them every 60 s), so that the CPU their
    # PostgreSQL backends spent can be read at its end.
    server = start_server(port, log, workers=workers, threads=threads, environment={"DATABASE_CONN_MAX_AGE": "86400"})
    try:
        # Every server thread opens its database connection and loads the source profile before the clock starts.
        _post_all(port, secret, [_payload(index) for index in warm], clients, Answers())
        one, five, _fifteen = os.getloadavg()
        answers = Answers()
        before = _cpu_now(server)
        seconds = _post_all(port, secret, payloads, clients, answers)
        spent = [
            after - start if start is not None and after is not None else None
            for start, after in zip(before, _cpu_now(server), strict=True)
        ]
    finally:
        stop_server(server)
    return HttpRun(seconds, answers, (one, five), spent)


def bundles(
    report: Report,
    *,
    count: int = BUNDLES,
    workers: int = SERVER_WORKERS,
    threads: int = SERVER_THREADS,
    clients: int = CLIENTS,
    cpu_bundles: int = CPU_BUNDLES,
) -> None:
    first = first_new_bundle()
    warm = list(range(first, first + 2 * workers * threads))
    timed = list(range(warm[-1] + 1, warm[-1] + 1 + count))
    payloads = [_payload(index) for index in timed]
    resources = sum(len(json.loads(payload)["entry"]) for payload in payloads)
    key, secret = _his_key()
    run = _http_run(secret, warm, payloads, workers=workers, threads=threads, clients=clients)
    checks = archive_check(warm + timed)
    validate_seconds = parallel_seconds(_validate, payloads, workers)
    used, cpu_resources, cpu_validate = _in_process_cpu(
        key, list(range(timed[-1] + 1, timed[-1] + 1 + cpu_bundles + 2))
    )
    key.revoked = True
    key.save(update_fields=["revoked"])

    rate, validate_rate = resources / run.seconds, resources / validate_seconds
    latency = Timing("bundle", run.answers.latencies_ms)
    cores = os.cpu_count() or 1
    per_resource = 1000 / cpu_resources
    report.section(
        "FHIR transaction bundles",
        [
            f"{count:,} transaction Bundles of 10–20 resources (Patient with conditional create, Encounter, 1–4 "
            f"Conditions, 7–14 Observations; `urn:uuid:` references), {resources:,} resources in all, each a new "
            f"patient, posted as `POST /fhir/R4/` (`application/fhir+json`, ~{sum(map(len, payloads)) / count / 1024:.0f} KiB) "
            f"with a HIS's API key (scope `fhir.write`) to gunicorn ({workers} workers × {threads} threads, gthread) "
            f"on PostgreSQL, from {clients} keep-alive client connections (threads of the benchmark's process, on the "
            "same machine), each posting its next bundle once answered. End to end is from the first request sent to "
            "the last answer read: HTTP, API key check, store raw, validate with R4B models, map, match identity, "
            "upsert, one audit entry, commit, the transaction-response. "
            f"{len(warm)} more bundles went first, untimed, to warm up every server thread. Every answer is checked "
            "(200, a transaction-response Bundle with an entry for each entry sent), then the archive: each bundle's "
            "patient (by MRN and by national ID), encounter, conditions and observations must be there exactly once. "
            f"Bare validation: `Bundle.model_validate(json.loads(…))` (R4B) of the same bundles on {workers} "
            "processes, nothing else.",
            "",
            *table(
                ["figure", "value"],
                [
                    [
                        f"end to end over HTTP, {clients} clients",
                        f"{run.seconds:,.1f} s = **{rate:,.0f} resources/s** (goal ≥ 1,000/s), {count / run.seconds:,.1f} "
                        f"bundles/s; per bundle p50 {ms(latency.p50)}, p95 {ms(latency.p95)}, p99 {ms(latency.p99)}",
                    ],
                    [
                        "HTTP statuses",
                        ", ".join(f"{status}: {n:,}" for status, n in sorted(run.answers.statuses.items())),
                    ],
                    [
                        "transaction-response Bundles with an entry for each entry sent",
                        f"{run.answers.complete:,} of {count:,}",
                    ],
                    [
                        "entry statuses",
                        ", ".join(f"{status}: {n:,}" for status, n in run.answers.entry_statuses.most_common()),
                    ],
                    *[[f"archive check, bundles with the {label}", f"**{n}**"] for label, n in checks.items()],
                    [
                        f"bare R4B validation of the same bundles, {workers} processes",
                        f"{validate_rate:,.0f} resources/s",
                    ],
                    ["end to end / bare validation", f"**{rate / validate_rate:.2f}**"],
                    _cpu_row("CPU during the run: gunicorn processes", run.spent[0], resources),
                    _cpu_row("CPU during the run: PostgreSQL backends of the database", run.spent[1], resources),
                    _cpu_row("CPU during the run: the clients (the benchmark's process)", run.spent[2], resources),
                    [
                        "CPU during the run, all three, ÷ (cores × seconds)",
                        f"{run.cpu_seconds / (cores * run.seconds):.0%}",
                    ],
                    [
                        f"resources/s all {cores} cores would allow at that CPU per resource",
                        f"{resources * cores / run.cpu_seconds:,.0f}" if run.cpu_seconds else "not measured",
                    ],
                    ["machine load before the run", f"{run.load[0]:.1f} (1 min), {run.load[1]:.1f} (5 min)"],
                ],
            ),  # fmt: skip
            *(
                ["", "First wrong answers: " + "; ".join(f"`{wrong}`" for wrong in run.answers.wrong)]
                if run.answers.wrong
                else []
            ),
            "",
            "The CPU rows are read from /proc over the timed run. Their sum against the machine's cores × the run's "
            "seconds says how much of the machine the run had; the rest was idle or other work on the shared "
            "machine. The row after it is the cores divided by that CPU per resource: what the same work would reach "
            "with the machine to itself.",
            "",
            f"CPU per resource in one process: {cpu_bundles:,} more bundles ({cpu_resources:,} resources, after 2 as "
            "warm-up) through `fhir_receive` in the benchmark's process, one after the other, as the same HIS (the "
            "caller the server makes of its key), without HTTP and without a profiler (process CPU time, which the "
            "other work on a shared machine disturbs far less than rates):",
            "",
            *table(
                ["part", "CPU"],
                [
                    [
                        "Python: store raw, validate, map, match, upsert, audit, commit, per resource",
                        ms(used.python_seconds * per_resource),
                    ],
                    [
                        "PostgreSQL backend serving it, per resource",
                        ms(used.backend_seconds * per_resource)
                        if used.backend_seconds is not None
                        else "not measured (remote server)",
                    ],
                    ["SQL statements per bundle", f"{used.statements / cpu_bundles:.1f}"],
                    ["bare R4B validation of the same bundles, per resource", ms(cpu_validate * per_resource)],
                ],
            ),  # fmt: skip
        ],
    )
