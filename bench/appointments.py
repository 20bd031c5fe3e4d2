"""Booking at release time (放号): thousands of patients racing for a few hundred places through a real server.

Seeds doctors with one released session each of single-place online slots, starts gunicorn against the
benchmark database, then every simulated patient (their own portal account, family member and signed-in
session cookie) books at the same moment: they try slots of the doctors not yet known full, at random,
until one takes them, every place is taken, or they give up after a few tries. The clients keep one
keep-alive connection each, as a gateway in front of the server would. The burst runs twice on fresh
doctors and patients: with as many client connections as the server answers at once (its workers ×
threads), and with 32 for comparison, where the rest of the connections only queue. The same server's
`/health/` rate, under the same number of client connections, is the framework's ceiling.

    python -m bench.run --reuse --only booking [--booking-patients 2000] [--booking-clients N] [--output /tmp/bench.md]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import Report, Timing, free_port, in_threads, ms, start_server, stop_server, table, thread_client

DOCTORS = 10
SLOTS_PER_DOCTOR = 30
SLOT_MINUTES = 5
# A patient gives up after this many refusals (a full slot, say) without every doctor being full.
MAX_TRIES = 12
# On 2 cores shared with PostgreSQL and the clients: threads that each hold one database connection.
SERVER_WORKERS = 4
SERVER_THREADS = 2
# Client connections open at once: the simulated patients queue behind them as at a gateway. By default
# as many as the server answers at once; more only measure the wait in its queue, shown for comparison.
CLIENTS = SERVER_WORKERS * SERVER_THREADS
COMPARE_CLIENTS = 32
HEALTH_REQUESTS = 4_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红娥玲芬燕彬鑫宇浩然子涵欣怡梓轩雨泽思远佳琪"


@dataclass
class Seeded:
    run: str
    schedule_ids: list[int]
    # Slot public ids per doctor, in time order.
    slots: list[list[str]]
    # (session cookie, patient public id) per simulated patient.
    patients: list[tuple[str, str]]


def seed(*, patients: int, doctors: int = DOCTORS, slots_per_doctor: int = SLOTS_PER_DOCTOR, burst: int = 0) -> Seeded:
    """Doctors with one unreleased session of single-place online slots; patients signed in to the portal."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from appointments.models import FamilyMember, PortalAccount, Schedule, Slot
    from appointments.portal.session import ACCOUNT_KEY, IDLE_SECONDS, SEEN_AT_KEY, SIGNED_IN_AT_KEY
    from hcrm.models import Department, User
    from patients.models import Patient

    run = f"{int(time.time()) % 100_000:05d}{burst}"
    rng = random.Random(int(run))
    # A department of its own per run: "free that day" counts this run's doctors, not those of earlier runs.
    department = Department.objects.create(code=f"BK{run}", name=f"放号科 {run}")
    day = timezone.localdate() + dt.timedelta(days=7)
    starts = timezone.make_aware(dt.datetime.combine(day, dt.time(8, 0)))
    never = timezone.now() + dt.timedelta(days=365)
    schedule_ids, slot_ids = [], []
    for index in range(doctors):
        doctor = User.objects.create(
            username=f"bench-doctor-{run}-{index}", full_name=f"医生{run}{index}", employee_number=f"B{run}{index:02d}"
        )
        schedule = Schedule.objects.create(
            doctor=doctor,
            department=department,
            date=day,
            session="morning",
            starts_at=starts,
            ends_at=starts + dt.timedelta(minutes=SLOT_MINUTES * slots_per_doctor),
            releases_at=never,
            capacity_online=slots_per_doctor,
        )
        slots = Slot.objects.bulk_create(
            Slot(
                schedule=schedule,
                starts_at=starts + dt.timedelta(minutes=SLOT_MINUTES * number),
                ends_at=starts + dt.timedelta(minutes=SLOT_MINUTES * (number + 1)),
                capacity_online=1,
            )
            for number in range(slots_per_doctor)
        )
        schedule_ids.append(schedule.pk)
        slot_ids.append([str(slot.uuid) for slot in slots])
    # Mobile numbers follow on from every earlier run's accounts, so runs on one database never collide.
    first_mobile = PortalAccount.objects.count()
    people = Patient.objects.bulk_create(
        Patient(
            mrn=f"BK{run}{index:05d}",
            name=rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
            sex=rng.choice(("male", "female")),
            mobile=f"+86139{(first_mobile + index) % 10**8:08d}",
        )
        for index in range(patients)
    )
    accounts = PortalAccount.objects.bulk_create(PortalAccount(mobile=person.mobile) for person in people)
    FamilyMember.objects.bulk_create(
        FamilyMember(account=account, patient=person, relationship="self")
        for account, person in zip(accounts, people, strict=True)
    )
    # Signed in just now, as `portal_sign_in` leaves a session.
    store = SessionStore()
    signed_in_at = int(time.time())
    expires = timezone.now() + dt.timedelta(seconds=IDLE_SECONDS)
    sessions = Session.objects.bulk_create(
        Session(
            session_key=f"bench{run}{index:06d}".ljust(32, "x"),
            session_data=store.encode(
                {
                    ACCOUNT_KEY: account.pk,
                    SIGNED_IN_AT_KEY: signed_in_at,
                    SEEN_AT_KEY: signed_in_at,
                    "_session_expiry": IDLE_SECONDS,
                }
            ),
            expire_date=expires,
        )
        for index, account in enumerate(accounts)
    )
    return Seeded(
        run=run,
        schedule_ids=schedule_ids,
        slots=slot_ids,
        patients=[(session.session_key, str(person.uuid)) for session, person in zip(sessions, people, strict=True)],
    )


@dataclass
class Burst:
    latencies_ms: list[float] = field(default_factory=list)
    view_ms: list[float] = field(default_factory=list)
    booked_at: list[float] = field(default_factory=list)
    answers: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _patient_books(port: int, cookie: str, patient: str, slots: list[list[str]], rng: random.Random, burst: Burst):
    """One patient: random slots of doctors not known full, until booked, all full, or out of patience."""
    from django.conf import settings

    client = thread_client(port)
    headers = {"Content-Type": "application/json", "Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}
    full_doctors: set[int] = set()
    tried: set[str] = set()
    latencies, views, answers = [], [], Counter()
    outcome = "gave_up"
    for _attempt in range(MAX_TRIES):
        open_doctors = [index for index in range(len(slots)) if index not in full_doctors]
        if not open_doctors:
            outcome = "all_full"
            break
        doctor = rng.choice(open_doctors)
        candidates = [slot for slot in slots[doctor] if slot not in tried]
        if not candidates:
            full_doctors.add(doctor)
            continue
        slot = rng.choice(candidates)
        tried.add(slot)
        payload = json.dumps({"patient": patient, "slot": slot}).encode()
        started = time.perf_counter()
        status, response_headers, content = client.send("POST", "/bench/book/", payload, headers)
        finished = time.perf_counter()
        latencies.append((finished - started) * 1000)
        views.append(float((response_headers.get("Server-Timing") or "view;dur=nan").rpartition("=")[2]))
        body = json.loads(content) if response_headers.get("Content-Type") == "application/json" else {}
        answers[body.get("code", "booked") if status != 201 else "booked"] += 1
        if status == 201:
            outcome = "booked"
            with burst.lock:
                burst.booked_at.append(finished)
            break
        if status != 409:
            outcome = f"error {status}"
            break
        if body.get("free_that_day") == 0:
            outcome = "all_full"
            break
        if body.get("free_in_session") == 0:
            full_doctors.add(doctor)
    with burst.lock:
        burst.latencies_ms += latencies
        burst.view_ms += views
        burst.answers.update(answers)
        burst.outcomes[outcome] += 1


def health_rate(port: int, clients: int, requests_total: int) -> tuple[float, Timing]:
    """Requests/s of GET /health/ (one SELECT 1) with `clients` keep-alive connections: the framework ceiling."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one(_item) -> None:
        started = time.perf_counter()
        status = thread_client(port).send("GET", "/health/")[0]
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"/health/ answered {status}")
        with lock:
            latencies.append(elapsed)

    _started, seconds = in_threads(clients, list(range(requests_total)), one)
    return requests_total / seconds, Timing("health", latencies)


# --- checks -------------------------------------------------------------------------------------------


def double_bookings(schedule_ids: list[int]) -> dict[str, int]:
    """Every way a place could be given twice; each must be 0."""
    from django.db.models import Count, F, Q

    from appointments.models import ACTIVE_STATUSES, Appointment, Slot

    active = Q(appointments__status__in=[status.value for status in ACTIVE_STATUSES])
    slots = Slot.objects.filter(schedule_id__in=schedule_ids).annotate(active=Count("appointments", filter=active))
    booked = Appointment.objects.filter(schedule_id__in=schedule_ids, status__in=ACTIVE_STATUSES)
    return {
        "slots with more active appointments than places": slots.filter(
            active__gt=F("capacity_online") + F("capacity_phone") + F("capacity_window")
        ).count(),
        "slots whose counter differs from their appointments": slots.exclude(
            active=F("taken_online") + F("taken_phone") + F("taken_window")
        ).count(),
        "repeated visit numbers in a session": booked.exclude(visit_number=None)
        .values("schedule_id", "visit_number")
        .annotate(times=Count("id"))
        .filter(times__gt=1)
        .count(),
        "patients booked twice": booked.values("patient_id").annotate(times=Count("id")).filter(times__gt=1).count(),
    }


# --- in process ---------------------------------------------------------------------------------------------


@dataclass
class Cost:
    path: str
    answer: str
    statements: str
    wall: Timing
    cpu: Timing


def in_process_costs(*, patients: int = 130) -> list[Cost]:
    """Statements and time per answer of the booking door in this process (Django's test client, no HTTP
    server, nothing else running here): a booking, a refusal of a full slot, and a refusal because the
    patient already has a booking with that doctor that day; GET /health/ beside them."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client as TestClient
    from django.test import override_settings
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from appointments.models import Schedule

    seeded = seed(patients=patients, doctors=2, burst=9)
    Schedule.objects.filter(pk__in=seeded.schedule_ids).update(releases_at=timezone.now())
    slots = seeded.slots[0]
    bookers = seeded.patients[1 : len(slots) - 9]
    others = seeded.patients[len(slots) : patients]

    def measure(path: str, tries: list[tuple[str, str, str]], url: str = "/bench/book/") -> Cost:
        walls, cpus, counts, answers = [], [], Counter(), Counter()
        for cookie, patient, slot in tries:
            client = TestClient()
            client.cookies[settings.SESSION_COOKIE_NAME] = cookie
            with CaptureQueriesContext(connection) as queries:
                wall, cpu = time.perf_counter(), time.thread_time()
                if slot:
                    response = client.post(url, {"patient": patient, "slot": slot}, content_type="application/json")
                else:
                    response = client.get(url)
                walls.append((time.perf_counter() - wall) * 1000)
                cpus.append((time.thread_time() - cpu) * 1000)
            counts[len(queries.captured_queries)] += 1
            answers[f"{response.status_code} {response.json().get('code', '') if slot else ''}".strip()] += 1
        return Cost(
            path,
            ", ".join(answers),
            "–".join(str(count) for count in sorted({min(counts), max(counts)})),
            Timing(path, walls),
            Timing(path, cpus),
        )

    with override_settings(ROOT_URLCONF="bench.booking_urls"):
        # Warm-up: a booking and a refusal load the code paths and prepare the statements.
        measure("warm-up", [(*seeded.patients[0], slots[0]), (*others[0], slots[0])])
        costs = [
            measure(
                "a booking", [(cookie, patient, slots[index + 1]) for index, (cookie, patient) in enumerate(bookers)]
            ),
            measure("refused: the slot is full", [(cookie, patient, slots[0]) for cookie, patient in others[1:]]),
            measure(
                "refused: one booking per doctor per day",
                [(cookie, patient, slots[-1]) for cookie, patient in bookers],
            ),
            measure("GET /health/", [("", "", "")] * 200, url="/health/"),
        ]
    return costs


# --- the section ------------------------------------------------------------------------------------------


@dataclass
class BurstResult:
    clients: int
    places: int
    booked: int
    burst: Burst
    seconds: float
    ceiling: float
    health: Timing
    checks: dict[str, int]
    load: str

    @property
    def timing(self) -> Timing:
        return Timing("booking", self.burst.latencies_ms)

    @property
    def request_rate(self) -> float:
        return len(self.burst.latencies_ms) / self.seconds

    @property
    def ratio(self) -> float:
        return self.request_rate / self.ceiling


def _load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def _burst(port: int, seeded: Seeded, clients: int) -> BurstResult:
    """Release the seeded sessions to every patient at once over `clients` connections, then the ceiling."""
    from django.utils import timezone

    from appointments.models import Appointment, Schedule

    # Warm-up: every server thread opens its database connection and loads its code paths.
    health_rate(port, clients, 200)
    burst = Burst()
    rng = random.Random(2026)
    work = [(cookie, patient, random.Random(rng.random())) for cookie, patient in seeded.patients]

    def release() -> None:
        Schedule.objects.filter(pk__in=seeded.schedule_ids).update(releases_at=timezone.now())

    load = _load()
    _started, seconds = in_threads(
        clients,
        work,
        lambda item: _patient_books(port, item[0], item[1], seeded.slots, item[2], burst),
        before_start=release,
    )
    burst_started = _started
    ceiling, health = health_rate(port, clients, HEALTH_REQUESTS)
    burst.booked_at = [moment - burst_started for moment in burst.booked_at]
    return BurstResult(
        clients=clients,
        places=sum(len(slots) for slots in seeded.slots),
        booked=Appointment.objects.filter(schedule_id__in=seeded.schedule_ids, status="booked").count(),
        burst=burst,
        seconds=seconds,
        ceiling=ceiling,
        health=health,
        checks=double_bookings(seeded.schedule_ids),
        load=load,
    )


def _column(result: BurstResult) -> list[str]:
    burst, timing = result.burst, result.timing
    view = Timing("view", burst.view_ms)
    last_booked = max(burst.booked_at) if burst.booked_at else float("nan")
    booking_rate = len(burst.booked_at) / last_booked if burst.booked_at else 0.0
    return [
        f"**{result.clients}**",
        f"**{result.booked}** of {result.places} places",
        f"**{booking_rate:,.0f}/s** ({len(burst.booked_at)} in {last_booked:.2f} s)",
        f"{len(burst.latencies_ms):,} in {result.seconds:.2f} s = **{result.request_rate:,.0f} requests/s**",
        f"p50 {ms(timing.p50)}, **p95 {ms(timing.p95)}**, p99 {ms(timing.p99)}",
        f"p50 {ms(view.p50)}, p95 {ms(view.p95)}, p99 {ms(view.p99)}",
        ", ".join(f"{code} {count:,}" for code, count in burst.answers.most_common()),
        ", ".join(f"{code} {count:,}" for code, count in burst.outcomes.most_common()),
        f"{result.ceiling:,.0f} requests/s; p50 {ms(result.health.p50)}, p95 {ms(result.health.p95)}",
        f"**{result.ratio:.2f}**",
        *[f"**{count}**" for count in result.checks.values()],
        "met" if timing.p95 < 100 else "not met",
        "met" if result.ratio >= 1 / 3 else "not met",
        result.load,
    ]


def booking(
    report: Report,
    *,
    patients: int = 2_000,
    clients: int = CLIENTS,
    compare_clients: int = COMPARE_CLIENTS,
    workers: int = SERVER_WORKERS,
    threads: int = SERVER_THREADS,
) -> None:
    started = time.perf_counter()
    bursts = [clients] if compare_clients == clients else [clients, compare_clients]
    seeded = [seed(patients=patients, burst=index) for index in range(len(bursts))]
    seed_seconds = time.perf_counter() - started
    port = free_port()
    log = Path(os.environ.get("BENCH_LOG_DIR", tempfile.gettempdir())) / f"hcrm-bench-booking-{os.getpid()}.log"
    server = start_server(port, log, workers=workers, threads=threads, settings_module="bench.booking_settings")
    try:
        results = [_burst(port, one, connections) for one, connections in zip(seeded, bursts, strict=True)]
    finally:
        stop_server(server)
    costs = in_process_costs()

    labels = [
        "client connections",
        "bookings made",
        "bookings/s (release to last place taken)",
        "booking requests (incl. refusals)",
        "booking request latency",
        "of which in the view (Server-Timing: portal sign-in check to answer)",
        "answers",
        "patients",
        "framework ceiling: GET /health/ on the same server, same connections",
        "booking requests/s ÷ ceiling",
        *results[0].checks,
        "goal: p95 under 100 ms",
        "goal: at least a third of the ceiling",
        "machine load before the burst",
    ]
    columns = [_column(result) for result in results]
    headers = ["figure", *[f"{result.clients} connections" for result in results]]
    report.section(
        "Booking at release time (放号)",
        [
            f"{DOCTORS} doctors × {SLOTS_PER_DOCTOR} single-place online slots = {results[0].places} places, "
            f"released at one moment to {patients:,} patients, each with their own portal account and signed-in "
            f"session, booking through gunicorn ({workers} workers × {threads} threads, gthread: {workers * threads} "
            "requests in flight at most) on PostgreSQL, from client connections on the same machine. The burst "
            f"runs {'once' if len(results) == 1 else 'twice, on fresh doctors and patients'}: "
            + " and ".join(f"{result.clients} connections" for result in results)
            + (
                f" ({clients} is what the server answers at once; with {compare_clients} the other connections only "
                "wait in its queue)."
                if len(results) > 1
                else "."
            )
            + " A patient tries random slots of the doctors not yet known full (a refusal says how many places the "
            "doctor and the department still have that day) until booked, every place is taken, or "
            f"{MAX_TRIES} tries. The door is a bench-only JSON endpoint (`bench/booking_urls.py`) running the "
            "portal's own code: its sign-in session check (`portal_required`), the account's family member and the "
            "slot as booking reads it in one statement (`member_patient_and_slot`), then `appointment_book`, the "
            "service every door calls, "
            "which queues the confirmation in the outbox in the same transaction. It books in one step where the "
            f"portal holds then confirms. Seeding took {seed_seconds:.1f} s.",
            "",
            *table(headers, [[label, *values] for label, *values in zip(labels, *columns, strict=True)]),
            "",
            "Latency is measured at the client from sending to the whole answer; with every patient arriving at "
            "once it includes the wait for a free server thread. The machine is shared: its load average is noted "
            "beside each burst.",
            "",
            "What one answer of the door costs in process, without the HTTP server or other requests (Django's test "
            "client; statements as Django counts them, BEGIN and COMMIT included; CPU is this thread's time, the rest "
            f"of the wall time is waiting for PostgreSQL; machine load {_load()}):",
            "",
            *table(
                ["path", "answers", "statements", "wall p50", "CPU p50"],
                [[cost.path, cost.answer, cost.statements, ms(cost.wall.p50), ms(cost.cpu.p50)] for cost in costs],
            ),
        ],
    )
