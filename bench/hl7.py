"""HL7 v2 over MLLP: ADT A01/A08 end to end through `manage.py hl7_listen`, beside bare `hl7.parse`.

The sender side runs in this process (one thread per connection); the listener is its own set of
processes, as in production. "End to end" is from the first byte sent to the ACK read back: the
listener frames, parses, applies the message and stores it raw in one transaction, commits, then answers.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import hl7

from bench.harness import Report, Timing, cpu_use, free_port, ms, parallel_seconds, table

# On 2 cores, 3 processes of 2 database threads did best of 2x3, 2x2, 3x2 and 4x1 for one sender and
# the burst, and as well as 2x3 for 4 senders: a process waiting on its commit leaves a core to another.
LISTENER_WORKERS = 3
LISTENER_THREADS = 2  # database threads per listener process: overlap commits with parsing
SENDERS = 4
SHANGHAI = ZoneInfo("Asia/Shanghai")  # HL7 times without an offset are the hospital's local time
START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\r"

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红娥玲芬燕彬鑫宇浩然子涵欣怡梓轩雨泽思远佳琪建国建华志强淑珍桂芳晓东海燕春梅秋菊"
CITIES = [
    ("浙江省", "杭州市", "330102", "310000"),
    ("浙江省", "宁波市", "330203", "315000"),
    ("江苏省", "南京市", "320102", "210000"),
    ("上海市", "上海市", "310101", "200000"),
    ("广东省", "广州市", "440103", "510000"),
    ("四川省", "成都市", "510104", "610000"),
]
STREETS = ["解放路", "延安路", "人民路", "中山路", "建国路", "文三路", "凤起路", "庆春路"]
DEPARTMENTS = [("NK", "内科"), ("ZJ", "针灸科"), ("TN", "推拿科"), ("GS", "骨伤科"), ("FK", "妇科"), ("PW", "脾胃病科")]
DOCTORS = [("D0012", "李", "时珍"), ("D0031", "张", "仲景"), ("D0047", "孙", "思邈"), ("D0105", "叶", "天士")]
DIAGNOSES = [
    ("I10.x00", "原发性高血压", "I10", "BNV060", "眩晕病", "GB/T15657"),
    ("E11.900", "2型糖尿病", "I10", "BNV070", "消渴病", "GB/T15657"),
    ("K29.500", "慢性胃炎", "I10", "BNP040", "胃脘痛", "GB/T15657"),
    ("M54.500", "腰痛", "I10", "BNS150", "腰痛病", "GB/T15657"),
    ("J44.900", "慢性阻塞性肺疾病", "I10", "BNF050", "肺胀病", "GB/T15657"),
]


@dataclass
class PatientSeed:
    mrn: str
    national_id: str
    family: str
    given: str
    sex: str
    birth: dt.date
    mobile: str
    city: tuple[str, str, str, str]
    visit: str
    department: tuple[str, str]
    doctor: tuple[str, str, str]
    diagnosis: tuple[str, ...]
    admitted: dt.datetime


def _national_id(region: str, birth: dt.date, sequence: int) -> str:
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(digit) * weight for digit, weight in zip(body, weights, strict=True)) % 11]
    return body + check


BIRTH_DAYS = 365 * 65


def _patients(count: int, seed: int, first: int = 0) -> list[PatientSeed]:
    """Patients number `first` to `first + count - 1`: MRN, visit number and national ID follow from the number,
    so a later run with other numbers admits patients the archive has never seen."""
    rng = random.Random(seed + first)
    people = []
    for index in range(count):
        number = first + index
        city = rng.choice(CITIES)
        # Steps of 97 visit every day of the 65 years before the sequence moves on: no national ID repeats
        # below 11.8 million patients.
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=number * 97 % BIRTH_DAYS)
        sex = rng.choice("12")
        sequence = number // BIRTH_DAYS % 500 * 2 + (1 if sex == "1" else 0)
        given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
        admitted = dt.datetime(2025, 3, 1, 8, 0, tzinfo=SHANGHAI) + dt.timedelta(minutes=rng.randrange(60 * 24 * 30))
        people.append(
            PatientSeed(
                mrn=f"B{number:09d}",
                national_id=_national_id(city[2], birth, sequence),
                family=rng.choice(SURNAMES),
                given=given,
                sex=sex,
                birth=birth,
                mobile=f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                city=city,
                visit=f"ZY{number:010d}",
                department=rng.choice(DEPARTMENTS),
                doctor=rng.choice(DOCTORS),
                diagnosis=rng.choice(DIAGNOSES),
                admitted=admitted,
            )
        )
    return people


def adt_message(person: PatientSeed, *, trigger: str, control_id: str, revision: int = 0) -> bytes:
    """An ADT A01 (admit) or A08 (update) as a Chinese HIS sends it: v2.4, UTF-8, MRN and national ID in PID-3."""
    stamp = (person.admitted + dt.timedelta(hours=revision)).strftime("%Y%m%d%H%M%S")
    province, city, _region, postal = person.city
    street = f"{STREETS[(int(person.mrn[1:]) + revision) % len(STREETS)]}{17 + revision}号"
    mobile = person.mobile if revision == 0 else f"{person.mobile[:-2]}{(int(person.mobile[-2:]) + revision) % 100:02d}"
    doctor = "^".join(person.doctor)
    department, _department_name = person.department
    icd, icd_name, icd_system, tcm, tcm_name, tcm_system = person.diagnosis
    pv1 = [""] * 45
    pv1[0:11] = ["PV1", "1", "I", f"{department}^{301 + revision % 9}^{1 + revision % 4}^ZJTCMH", "R", "", "", doctor, "", "", department]  # fmt: skip
    pv1[17], pv1[19], pv1[44] = doctor, person.visit, person.admitted.strftime("%Y%m%d%H%M%S")
    segments = [
        f"MSH|^~\\&|HIS|ZJTCMH|HCRM|ZJTCMH|{stamp}||ADT^{trigger}^ADT_A01|{control_id}|P|2.4|||AL|NE|CHN|UNICODE UTF-8",
        f"EVN|{trigger}|{stamp}|||{doctor}",
        f"PID|1||{person.mrn}^^^ZJTCMH^MR~{person.national_id}^^^CHN^NNCHN||{person.family}^{person.given}||"
        f"{person.birth:%Y%m%d}|{person.sex}|||{street}^^{city}^{province}^{postal}^CHN^H||^PRN^CP^^^^{mobile}||"
        "|||||||汉族",
        f"NK1|1|{person.family}^建国|SPO^配偶^HL70063||^PRN^CP^^^^139{int(person.mrn[1:]):08d}",
        "|".join(pv1),
        f"DG1|1||{icd}^{icd_name}^{icd_system}||{stamp}|A",
        f"DG1|2||{tcm}^{tcm_name}^{tcm_system}||{stamp}|A",
    ]
    return ("\r".join(segments) + "\r").encode("utf-8")


@dataclass
class Workload:
    single: list[tuple[str, bytes]] = field(default_factory=list)
    concurrent: list[list[tuple[str, bytes]]] = field(default_factory=list)
    burst: list[list[tuple[str, bytes]]] = field(default_factory=list)


def workload(
    *, patients: int, single: int, concurrent: int, burst: int, run: str, seed: int = 2026, first: int = 0
) -> Workload:
    """Admissions of new patients mixed with updates of ones already admitted; one patient, one connection.

    Patients are dealt to connections by index, so every message about one patient travels on one
    connection, in order, as a HIS interface sends them.
    """
    people = _patients(patients, seed, first)
    rng = random.Random(seed + 1)
    admitted: list[list[int]] = [[] for _ in range(SENDERS)]
    next_in_lane = list(range(SENDERS))
    revisions: Counter[int] = Counter()
    counter = 0

    def message(lane: int) -> tuple[str, bytes]:
        nonlocal counter
        counter += 1
        control_id = f"{run}-{counter:06d}"
        pool = admitted[lane]
        index = next_in_lane[lane]
        if index < patients and (not pool or rng.random() < 0.5):
            next_in_lane[lane] += SENDERS
            pool.append(index)
            return control_id, adt_message(people[index], trigger="A01", control_id=control_id)
        index = rng.choice(pool)
        revisions[index] += 1
        return control_id, adt_message(people[index], trigger="A08", control_id=control_id, revision=revisions[index])

    load = Workload()
    load.single = [message(0) for _ in range(single)]
    load.concurrent = [[message(lane) for _ in range(concurrent // SENDERS)] for lane in range(SENDERS)]
    load.burst = [[message(lane) for _ in range(burst // SENDERS)] for lane in range(SENDERS)]
    return load


# --- the listener --------------------------------------------------------------------------------


def _start_listener(port: int, log: Path, floor: bool = False) -> subprocess.Popen:
    """`manage.py hl7_listen`, or with `floor` as many `bench.hl7_floor` processes sharing the port."""
    env = {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    from django.conf import settings

    if floor:
        command = [sys.executable, "-c", _FLOOR_PROCESSES, str(port), str(LISTENER_WORKERS), str(LISTENER_THREADS)]
    else:
        command = [sys.executable, "manage.py", "hl7_listen", "--port", str(port), "--workers", str(LISTENER_WORKERS),
                   "--threads", str(LISTENER_THREADS)]  # fmt: skip
    with log.open("wb") as output:
        listener = subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = [line for line in log.read_text(errors="replace").splitlines() if "(pid" in line]
        if len(ready) >= LISTENER_WORKERS:
            return listener
        if listener.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"the MLLP listener did not start:\n{log.read_text(errors='replace')[-2000:]}")


# The floor listener's processes under one parent that passes SIGTERM on, as `hl7_listen --workers` does.
_FLOOR_PROCESSES = """
import signal, subprocess, sys
port, processes, threads = sys.argv[1:4]
children = [subprocess.Popen([sys.executable, "-m", "bench.hl7_floor", "--port", port, "--threads", threads])
            for _ in range(int(processes))]
signal.signal(signal.SIGTERM, lambda *_: [child.terminate() for child in children])
for child in children:
    child.wait()
"""


def _stop_listener(listener: subprocess.Popen) -> None:
    listener.send_signal(signal.SIGTERM)
    try:
        listener.wait(60)
    except subprocess.TimeoutExpired:
        listener.kill()


def _read_ack(sock: socket.socket, buffer: bytearray) -> bytes:
    while True:
        end = buffer.find(END_BLOCK)
        if end >= 0:
            ack = bytes(buffer[:end])
            del buffer[: end + 2]
            return ack
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the listener closed the connection")
        buffer += data


def _ack_code(ack: bytes) -> str:
    position = ack.find(b"\rMSA|")
    return ack[position + 5 : position + 7].decode() if position >= 0 else "??"


def _send_waiting(port: int, messages: list[tuple[str, bytes]], latencies: list[float], codes: Counter) -> None:
    """One connection: each message waits for its ACK before the next goes."""
    buffer = bytearray()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _control_id, payload in messages:
            started = time.perf_counter()
            sock.sendall(START_BLOCK + payload + END_BLOCK)
            ack = _read_ack(sock, buffer)
            latencies.append((time.perf_counter() - started) * 1000)
            codes[_ack_code(ack)] += 1


def _send_streaming(port: int, messages: list[tuple[str, bytes]], codes: Counter, done_at: list[float]) -> None:
    """One connection: a writer sends everything as fast as the socket takes it; a reader counts ACKs."""
    buffer = bytearray()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        writer = threading.Thread(
            target=sock.sendall, args=(b"".join(START_BLOCK + payload + END_BLOCK for _id, payload in messages),)
        )
        writer.start()
        for _ in messages:
            codes[_ack_code(_read_ack(sock, buffer))] += 1
        done_at.append(time.perf_counter())
        writer.join()


def _run_parallel(target, lanes: list[tuple]) -> float:
    threads = [threading.Thread(target=target, args=lane) for lane in lanes]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _floor_rates(load: Workload, log: Path) -> tuple[float, float]:
    """Messages/s of the floor listener (parse, store raw, commit, ACK) for 1 and for 4 waiting senders.

    The same messages as the real run under their own control ids; the rows are deleted afterwards."""
    from django.db import connection

    port = free_port()
    listener = _start_listener(port, log.with_suffix(".floor.log"), floor=True)
    codes: Counter = Counter()
    try:
        _run_parallel(_send_waiting, [(port, load.single[:50], [], codes)])
        single_seconds = _run_parallel(_send_waiting, [(port, load.single[50:], [], codes)])
        concurrent_seconds = _run_parallel(_send_waiting, [(port, lane, [], codes) for lane in load.concurrent])
    finally:
        _stop_listener(listener)
    with connection.cursor() as cursor:
        run = load.single[0][0].rsplit("-", 1)[0]
        cursor.execute("DELETE FROM integrations_inboundmessage WHERE control_id LIKE %s", [f"{run}-%"])
    if set(codes) != {"AA"}:
        raise RuntimeError(f"the floor listener answered {dict(codes)}")
    return (
        (len(load.single) - 50) / single_seconds,
        sum(len(lane) for lane in load.concurrent) / concurrent_seconds,
    )


# --- bare hl7.parse --------------------------------------------------------------------------------


def _parse(payload: bytes) -> None:
    hl7.parse(payload, encoding="utf-8")


def bare_parse_rate(messages: list[bytes], processes: int) -> float:
    """Messages per second `hl7.parse` manages on `processes` processes, each parsing its share."""
    return len(messages) / parallel_seconds(_parse, messages, processes)


# --- where the pipeline's time goes ----------------------------------------------------------------

PROFILE_PARTS = [
    ("read MSH, decode, parse (`message.py`)", "integrations/hl7v2/message.py", {"read_header", "parse_message"}),
    (
        "store the raw row with its one audit entry (`_store_applied`)",
        "integrations/hl7v2/pipeline.py",
        {"_store_applied"},
    ),
    ("identity (`patient_match_or_create`)", "patients/services/identity.py", {"patient_match_or_create"}),
    ("apply, identity included (`apply_message`)", "integrations/hl7v2/apply.py", {"apply_message"}),
    ("audit entries (django-auditlog receivers)", "auditlog/receivers.py", {"wrapper"}),
    ("build the ACK", "integrations/hl7v2/ack.py", {"build_ack"}),
]


def pipeline_cpu(messages: list[bytes]) -> tuple[float, float | None, float, float]:
    """CPU per message of `hl7_receive` in this process, without a profiler: (Python ms, PostgreSQL backend ms
    or None, SQL statements, bare `hl7.parse` ms). CPU time, unlike rates, holds up on a shared machine."""
    from integrations.hl7v2.pipeline import hl7_receive

    used = cpu_use(messages, lambda payload: hl7_receive(payload, transport="mllp"))
    started = time.process_time()
    for payload in messages:
        hl7.parse(payload, encoding="utf-8")
    parse_seconds = time.process_time() - started
    per = 1000 / len(messages)
    return (
        used.python_seconds * per,
        used.backend_seconds * per if used.backend_seconds is not None else None,
        used.statements / len(messages),
        parse_seconds * per,
    )


def pipeline_profile(messages: list[bytes]) -> tuple[float, float, list[tuple[str, float]]]:
    """Run the pipeline in this process under cProfile: (ms per message, queries per message, [(part, share)])."""
    import cProfile
    import pstats

    from django.db import connection

    from integrations.hl7v2.pipeline import hl7_receive

    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    profile = cProfile.Profile()
    with connection.execute_wrapper(count):
        started = time.perf_counter()
        profile.enable()
        for payload in messages:
            hl7_receive(payload, transport="mllp")
        profile.disable()
        elapsed = time.perf_counter() - started
    stats = pstats.Stats(profile).stats  # (file, line, function) -> (calls, primitive, own, cumulative, callers)
    total = sum(own for _calls, _primitive, own, _cumulative, _callers in stats.values())
    shares = []
    for label, path, functions in PROFILE_PARTS:
        cumulative = max(
            (
                entry[3]
                for (file, _line, function), entry in stats.items()
                if file.endswith(path) and function in functions
            ),
            default=0.0,
        )
        shares.append((label, cumulative / total))
    database = sum(entry[2] for (file, _line, function), entry in stats.items() if "execute' of 'psycopg2" in function)
    shares.append(("waiting for PostgreSQL (psycopg2 `execute`, all of the above)", database / total))
    return elapsed * 1000 / len(messages), queries / len(messages), shares


# --- the section -----------------------------------------------------------------------------------


def hl7_mllp(report: Report, *, patients: int = 20_000, single: int = 3_000, concurrent: int = 8_000, burst: int = 30_000) -> None:  # fmt: skip
    from integrations.models import InboundMessage

    run = f"B{int(time.time()) % 100000:05d}"
    # Each run (a minute apart at least) admits patients numbered where no earlier run's were: its A01s are
    # new patients, as the section says, not the previous run's patients admitted again.
    block = patients + 4_000
    first = int(time.time()) // 60 % (11_000_000 // block) * block
    load = workload(patients=patients, single=single, concurrent=concurrent, burst=burst, run=run, first=first)
    port = free_port()
    log = Path(os.environ.get("BENCH_LOG_DIR", tempfile.gettempdir())) / f"hcrm-bench-hl7-{os.getpid()}.log"
    listener = _start_listener(port, log)
    try:
        # Warm-up: every listener thread opens its database connection and loads the source profile.
        warm: Counter = Counter()
        _run_parallel(_send_waiting, [(port, load.single[:50], [], warm)])

        single_latencies: list[float] = []
        single_codes: Counter = Counter()
        single_seconds = _run_parallel(_send_waiting, [(port, load.single[50:], single_latencies, single_codes)])

        concurrent_latencies: list[float] = []
        concurrent_codes: Counter = Counter()
        concurrent_seconds = _run_parallel(
            _send_waiting, [(port, lane, concurrent_latencies, concurrent_codes) for lane in load.concurrent]
        )

        burst_codes: Counter = Counter()
        burst_done: list[float] = []
        burst_started = time.perf_counter()
        _run_parallel(_send_streaming, [(port, lane, burst_codes, burst_done) for lane in load.burst])
        burst_seconds = max(burst_done) - burst_started
    finally:
        _stop_listener(listener)
    floor_single, floor_concurrent = _floor_rates(
        workload(patients=patients, single=single, concurrent=concurrent, burst=0, run=f"{run}F", first=first), log
    )

    burst_total = sum(len(lane) for lane in load.burst)
    burst_applied = InboundMessage.objects.filter(
        control_id__in=[control_id for lane in load.burst for control_id, _payload in lane], status="applied"
    ).count()
    single_messages = [payload for _id, payload in load.single[50:]]
    concurrent_messages = [payload for lane in load.concurrent for _id, payload in lane]
    parse_one = bare_parse_rate(single_messages, 1)
    parse_many = bare_parse_rate(concurrent_messages, LISTENER_WORKERS)

    cpu_python, cpu_postgres, cpu_statements, cpu_parse = pipeline_cpu(
        [
            payload
            for _id, payload in workload(
                patients=patients, single=1000, concurrent=0, burst=0, run=f"{run}C", first=first + patients
            ).single
        ]
    )
    profile_ms, profile_queries, profile_shares = pipeline_profile(
        [
            payload
            for _id, payload in workload(
                patients=patients, single=300, concurrent=0, burst=0, run=f"{run}P", first=first + patients + 2_500
            ).single
        ]
    )

    single_rate = len(single_messages) / single_seconds
    concurrent_rate = len(concurrent_messages) / concurrent_seconds
    single_timing = Timing("single", single_latencies)
    concurrent_timing = Timing("concurrent", concurrent_latencies)
    refused = burst_total - burst_codes["AA"]
    not_aa = sum(count for code, count in (single_codes + concurrent_codes).items() if code != "AA")
    size = sum(len(payload) for payload in single_messages) / len(single_messages)
    report.section(
        "HL7 v2 over MLLP",
        [
            f"ADT A01 (admissions of {patients:,} distinct patients) mixed half and half with A08 updates of admitted ones, "
            f"v2.4, UTF-8, ~{size:,.0f} bytes each (PID-3 with MRN and national ID, NK1, PV1, two DG1: ICD-10 and TCM). "
            f"Listener `manage.py hl7_listen --workers {LISTENER_WORKERS} --threads {LISTENER_THREADS}` on PostgreSQL; "
            "each sender waits for the ACK (parse, store raw, apply, commit, ACK) before sending its next message. "
            "Bare parse: `hl7.parse` of the same messages in as many processes, nothing else. "
            "Floor: the same messages under new control ids to the same MLLP server and process layout whose handler "
            "only parses with `hl7.parse`, inserts the raw row with one prepared statement, commits and answers AA: "
            "the least any listener that stores a message before acknowledging it must do.",
            "",
            *table(
                ["figure", "value"],
                [
                    [
                        "1 sender, end to end",
                        f"**{single_rate:,.0f} messages/s**; ACK p50 {ms(single_timing.p50)}, p99 {ms(single_timing.p99)}",
                    ],
                    ["bare `hl7.parse`, 1 process", f"{parse_one:,.0f} messages/s"],
                    ["end to end / bare parse (1 sender)", f"**{single_rate / parse_one:.2f}**"],
                    [
                        f"{SENDERS} senders, end to end",
                        f"**{concurrent_rate:,.0f} messages/s**; ACK p50 {ms(concurrent_timing.p50)}, "
                        f"p99 {ms(concurrent_timing.p99)}",
                    ],
                    [f"bare `hl7.parse`, {LISTENER_WORKERS} processes", f"{parse_many:,.0f} messages/s"],
                    [f"end to end / bare parse ({SENDERS} senders)", f"**{concurrent_rate / parse_many:.2f}**"],
                    ["answers other than AA in the two runs above", f"{not_aa}"],
                    [
                        "floor, 1 sender: parse, store raw, commit, ACK; nothing applied (`bench/hl7_floor.py`)",
                        f"{floor_single:,.0f} messages/s = **{floor_single / parse_one:.2f}** of bare parse",
                    ],
                    [
                        f"floor, {SENDERS} senders",
                        f"{floor_concurrent:,.0f} messages/s = **{floor_concurrent / parse_many:.2f}** of bare parse",
                    ],
                    [
                        f"burst: {burst_total:,} messages on {SENDERS} connections, sent without waiting",
                        f"drained in {burst_seconds:,.1f} s = {burst_total / burst_seconds:,.0f} messages/s",
                    ],
                    ["burst: refused (any answer but AA, or none)", f"**{refused}**"],
                    ["burst: applied", f"{burst_applied:,} of {burst_total:,}"],
                ],
            ),
            "",
            "CPU per message, 1,000 more messages through `hl7_receive` in this process without a profiler "
            "(process CPU time, which the other work on a shared machine disturbs far less than rates):",
            "",
            *table(
                ["part", "CPU per message"],
                [
                    ["Python: read, parse, map, match, write, ACK", ms(cpu_python)],
                    [
                        "PostgreSQL backend serving it",
                        ms(cpu_postgres) if cpu_postgres is not None else "not measured (remote server)",
                    ],
                    ["SQL statements", f"{cpu_statements:.1f}"],
                    ["bare `hl7.parse` of the same messages", ms(cpu_parse)],
                ],
            ),
            "",
            f"Where the time goes: 300 more messages through `hl7_receive` in one process under cProfile "
            f"({profile_ms:.1f} ms and {profile_queries:.1f} SQL statements per message with the profiler on); "
            "share of the profiled time spent inside each part:",
            "",
            *table(["part", "share"], [[label, f"{share:.0%}"] for label, share in profile_shares]),
        ],
    )
