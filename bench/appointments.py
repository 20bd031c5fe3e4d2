"""Booking at release time (放号): thousands of patients racing for a few hundred places through a real server.

Seeds doctors with one released session each of single-place online slots, starts gunicorn against the
benchmark database, then every simulated patient (their own portal account, family member and signed-in
session cookie) books at the same moment: they try slots of the doctors not yet known full, at random,
until one takes them, every place is taken, or they give up after a few tries. The same server's
`/health/` rate, under the same number of client connections, is the framework's ceiling.

    python -m bench.run --reuse --only booking [--booking-patients 2000] [--output /tmp/bench.md]
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import Report, Timing, ms, table

DOCTORS = 10
SLOTS_PER_DOCTOR = 30
SLOT_MINUTES = 5
# A patient gives up after this many refusals (a full slot, say) without every doctor being full.
MAX_TRIES = 12
# Client connections open at once: the simulated patients queue behind them as at a gateway.
CLIENTS = 32
# On 2 cores: sync-style threads that each hold one database connection.
SERVER_WORKERS = 4
SERVER_THREADS = 2
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


def seed(*, patients: int, doctors: int = DOCTORS, slots_per_doctor: int = SLOTS_PER_DOCTOR) -> Seeded:
    """Doctors with one unreleased session of single-place online slots; patients signed in to the portal."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from appointments.models import FamilyMember, PortalAccount, Schedule, Slot
    from bench.booking_urls import SESSION_KEY
    from hcrm.models import Department, User
    from patients.models import Patient

    run = f"{int(time.time()) % 1_000_000:06d}"
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
    people = Patient.objects.bulk_create(
        Patient(
            mrn=f"BK{run}{index:05d}",
            name=rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
            sex=rng.choice(("male", "female")),
            mobile=f"+86139{(int(run) * 100_000 + index) % 10**8:08d}",
        )
        for index in range(patients)
    )
    accounts = PortalAccount.objects.bulk_create(PortalAccount(mobile=person.mobile) for person in people)
    FamilyMember.objects.bulk_create(
        FamilyMember(account=account, patient=person, relationship="self")
        for account, person in zip(accounts, people, strict=True)
    )
    store = SessionStore()
    expires = timezone.now() + dt.timedelta(hours=8)
    sessions = Session.objects.bulk_create(
        Session(
            session_key=f"bench{run}{index:06d}".ljust(32, "x"),
            session_data=store.encode({SESSION_KEY: account.pk}),
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


# --- the server -------------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int, log: Path) -> subprocess.Popen:
    """gunicorn with the project's settings plus the bench booking door, on the benchmark database."""
    import requests
    from django.conf import settings

    gunicorn = Path(sys.executable).with_name("gunicorn")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.booking_settings", "LOG_LEVEL": "WARNING"}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(gunicorn), "hcrm.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(SERVER_WORKERS),
             "--worker-class", "gthread", "--threads", str(SERVER_THREADS), "--backlog", "4096",
             "--keep-alive", "30", "--log-level", "warning"],
            env=env, cwd=settings.BASE_DIR, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            if requests.get(f"http://127.0.0.1:{port}/health/", timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"gunicorn did not start:\n{log.read_text(errors='replace')[-2000:]}")


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()


# --- the clients ------------------------------------------------------------------------------------------


@dataclass
class Burst:
    latencies_ms: list[float] = field(default_factory=list)
    view_ms: list[float] = field(default_factory=list)
    booked_at: list[float] = field(default_factory=list)
    answers: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _patient_books(base: str, cookie: str, patient: str, slots: list[list[str]], rng: random.Random, burst: Burst):
    """One patient: random slots of doctors not known full, until booked, all full, or out of patience."""
    import requests
    from django.conf import settings

    full_doctors: set[int] = set()
    tried: set[str] = set()
    latencies, views, answers = [], [], Counter()
    outcome = "gave_up"
    with requests.Session() as session:
        session.cookies.set(settings.SESSION_COOKIE_NAME, cookie, domain="127.0.0.1")
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
            started = time.perf_counter()
            response = session.post(f"{base}/bench/book/", json={"patient": patient, "slot": slot}, timeout=60)
            finished = time.perf_counter()
            latencies.append((finished - started) * 1000)
            views.append(float(response.headers.get("Server-Timing", "view;dur=nan").rpartition("=")[2]))
            body = response.json()
            answers[body.get("code", "booked") if response.status_code != 201 else "booked"] += 1
            if response.status_code == 201:
                outcome = "booked"
                with burst.lock:
                    burst.booked_at.append(finished)
                break
            if response.status_code != 409:
                outcome = f"error {response.status_code}"
                break
            if body.get("free_that_day") == 0:
                outcome = "all_full"
                break
            if body.get("free_in_session") == 0:
                full_doctors.add(doctor)
        else:
            outcome = "gave_up"
    with burst.lock:
        burst.latencies_ms += latencies
        burst.view_ms += views
        burst.answers.update(answers)
        burst.outcomes[outcome] += 1


def _in_threads(clients: int, work: list, call, before_start=None) -> tuple[float, float]:
    """`call(item)` for every item on `clients` threads that start together; (start, seconds to the last)."""
    position = iter(range(len(work)))
    position_lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        while True:
            with position_lock:
                index = next(position, None)
            if index is None:
                return
            try:
                call(work[index])
            except Exception as error:  # counted and reported, the burst goes on
                errors.append(error)

    threads = [threading.Thread(target=run) for _index in range(clients)]
    for thread in threads:
        thread.start()
    if before_start is not None:
        before_start()
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    if errors:
        print(f"{len(errors)} clients failed, first: {errors[0]!r}", file=sys.stderr)
    return started, time.perf_counter() - started


def health_rate(base: str, clients: int, requests_total: int) -> tuple[float, Timing]:
    """Requests/s of GET /health/ (one SELECT 1) with `clients` keep-alive connections: the framework ceiling."""
    import requests

    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    def one(_item) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        started = time.perf_counter()
        response = session.get(f"{base}/health/", timeout=30)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"/health/ answered {response.status_code}")
        with lock:
            latencies.append(elapsed)

    _started, seconds = _in_threads(clients, list(range(requests_total)), one)
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


# --- the section ------------------------------------------------------------------------------------------


def booking(report: Report, *, patients: int = 2_000, clients: int = CLIENTS) -> None:
    from django.utils import timezone

    from appointments.models import Appointment, Schedule

    started = time.perf_counter()
    seeded = seed(patients=patients)
    seed_seconds = time.perf_counter() - started
    places = sum(len(slots) for slots in seeded.slots)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(os.environ.get("BENCH_LOG_DIR", tempfile.gettempdir())) / f"hcrm-bench-booking-{os.getpid()}.log"
    server = start_server(port, log)
    burst = Burst()
    try:
        # Warm-up: every server thread opens its database connection and loads its code paths.
        health_rate(base, clients, 200)
        rng = random.Random(2026)
        work = [(cookie, patient, random.Random(rng.random())) for cookie, patient in seeded.patients]

        def release() -> None:
            Schedule.objects.filter(pk__in=seeded.schedule_ids).update(releases_at=timezone.now())

        burst_started, burst_seconds = _in_threads(
            clients,
            work,
            lambda item: _patient_books(base, item[0], item[1], seeded.slots, item[2], burst),
            before_start=release,
        )
        ceiling, health_timing = health_rate(base, clients, HEALTH_REQUESTS)
    finally:
        stop_server(server)

    checks = double_bookings(seeded.schedule_ids)
    booked = Appointment.objects.filter(schedule_id__in=seeded.schedule_ids, status="booked").count()
    timing = Timing("booking", burst.latencies_ms)
    view_timing = Timing("view", burst.view_ms)
    requests_total = len(burst.latencies_ms)
    request_rate = requests_total / burst_seconds
    all_booked_seconds = (max(burst.booked_at) - burst_started) if burst.booked_at else float("nan")
    booking_rate = len(burst.booked_at) / all_booked_seconds if burst.booked_at else 0.0
    ratio = request_rate / ceiling
    verdict_p95 = "met" if timing.p95 < 100 else "not met"
    verdict_ratio = "met" if ratio >= 1 / 3 else "not met"
    report.section(
        "Booking at release time (放号)",
        [
            f"{DOCTORS} doctors × {SLOTS_PER_DOCTOR} single-place online slots = {places} places, released at one "
            f"moment to {patients:,} patients, each with their own portal account and signed-in session, booking "
            f"through gunicorn ({SERVER_WORKERS} workers × {SERVER_THREADS} threads, gthread) on PostgreSQL from "
            f"{clients} client connections on the same machine. A patient tries random slots of the doctors not yet "
            f"known full (a refusal says how many places the doctor and the department still have that day) until "
            f"booked, every place is taken, or {MAX_TRIES} tries. The door is a bench-only endpoint (`bench/booking_urls.py`: session → "
            "portal account → family member → `appointment_book`, which queues the confirmation in the outbox in "
            f"the same transaction). Seeding took {seed_seconds:.1f} s.",
            "",
            *table(
                ["figure", "value"],
                [
                    ["bookings made", f"**{booked}** of {places} places"],
                    [
                        "bookings/s (release to last place taken)",
                        f"**{booking_rate:,.0f}/s** ({len(burst.booked_at)} in {all_booked_seconds:.2f} s)",
                    ],
                    [
                        "booking requests (incl. refusals)",
                        f"{requests_total:,} in {burst_seconds:.2f} s = **{request_rate:,.0f} requests/s**",
                    ],
                    [
                        "booking request latency",
                        f"p50 {ms(timing.p50)}, **p95 {ms(timing.p95)}**, p99 {ms(timing.p99)}",
                    ],
                    [
                        "of which in the view (Server-Timing: session to answer, one transaction)",
                        f"p50 {ms(view_timing.p50)}, p95 {ms(view_timing.p95)}, p99 {ms(view_timing.p99)}",
                    ],
                    ["answers", ", ".join(f"{code} {count:,}" for code, count in burst.answers.most_common())],
                    ["patients", ", ".join(f"{code} {count:,}" for code, count in burst.outcomes.most_common())],
                    [
                        "framework ceiling: GET /health/ on the same server",
                        f"{ceiling:,.0f} requests/s; p50 {ms(health_timing.p50)}, p95 {ms(health_timing.p95)}",
                    ],
                    ["booking requests/s ÷ ceiling", f"**{ratio:.2f}**"],
                    *[[name, f"**{count}**"] for name, count in checks.items()],
                    ["goal: p95 under 100 ms", verdict_p95],
                    ["goal: at least a third of the ceiling", verdict_ratio],
                ],
            ),
            "",
            "Latency is measured at the client from sending to the whole answer; with every patient arriving at "
            "once it includes the wait for a free server thread.",
        ],
    )
