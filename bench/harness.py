"""Helpers shared by the benchmark sections: timing, the report writer, a gunicorn server of the app with
keep-alive clients, CPU per item in this process, and a rate on several processes."""

from __future__ import annotations

import datetime as dt
import http.client
import multiprocessing
import os
import platform
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Timing:
    label: str
    samples_ms: list[float]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.samples_ms)
        index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
        return ordered[index]

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p95(self) -> float:
        return self.percentile(0.95)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms)


def time_each(label: str, inputs, call: Callable, warmup: int = 5) -> Timing:
    """Call `call(item)` for each input, after a few warm-up calls, and keep each duration."""
    inputs = list(inputs)
    for item in inputs[:warmup]:
        call(item)
    samples = []
    for item in inputs:
        started = time.perf_counter()
        call(item)
        samples.append((time.perf_counter() - started) * 1000)
    return Timing(label, samples)


@dataclass
class Report:
    title: str
    command: str
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    def section(self, heading: str, lines: list[str]) -> None:
        self.sections.append((heading, lines))
        print(f"\n## {heading}")
        for line in lines:
            print(line)

    def write(self, path: Path) -> None:
        lines = [
            f"# {self.title}",
            "",
            f"Measured {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} with `{self.command}`.",
            "",
        ]
        lines += ["## Machine", "", *machine_lines(), ""]
        for heading, body in self.sections:
            lines += [f"## {heading}", "", *body, ""]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines), encoding="utf-8")


def machine_lines() -> list[str]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    import django

    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {memory}",
        f"- {platform.platform()}; Python {platform.python_version()}; Django {django.get_version()}; PostgreSQL {postgres}",
        f"- commit {_git_commit()}",
        "- The machine is shared: compare figures within one run (the ratios), not across runs.",
    ]


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value >= 1 else f"{value:.2f} ms"


# --- a server of the app and its clients ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    port: int,
    log: Path,
    *,
    workers: int,
    threads: int,
    settings_module: str = "hcrm.settings",
    environment: dict[str, str] | None = None,
) -> subprocess.Popen:
    """gunicorn (gthread) serving the app with `settings_module` and any more `environment`, on the benchmark
    database; back once it answers."""
    from django.conf import settings

    gunicorn = Path(sys.executable).with_name("gunicorn")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "LOG_LEVEL": "WARNING", **(environment or {})}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(gunicorn), "hcrm.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
             "--worker-class", "gthread", "--threads", str(threads), "--backlog", "4096",
             "--keep-alive", "30", "--log-level", "warning"],
            env=env, cwd=settings.BASE_DIR, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            if Client(port).send("GET", "/health/")[0] == 200:
                return server
        except OSError:
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


class Client:
    """One keep-alive connection to the server, on the standard library's HTTP client: the load generator
    shares the cores with the server, so it spends as little of them as it can."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, headers, body); a keep-alive connection the server closed meanwhile is opened again."""
        for attempt in (1, 2):
            reused = self.connection is not None
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
                response = self.connection.getresponse()
                return response.status, response.headers, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                self.connection = None
                if attempt == 2 or not reused:
                    raise
        raise AssertionError("unreachable")


_clients = threading.local()


def thread_client(port: int) -> Client:
    """The calling thread's own connection."""
    client = getattr(_clients, "client", None)
    if client is None or client.port != port:
        client = _clients.client = Client(port)
    return client


def in_threads(clients: int, work: list, call, before_start=None) -> tuple[float, float]:
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


# --- CPU in this process, rates on several ---------------------------------------------------------------


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time (user and system) process `pid` of this machine has used so far, or None."""
    fields = _proc_stat(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds() -> float | None:
    """CPU time this connection's PostgreSQL backend has used so far (a local server only), or None."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return process_cpu_seconds(pid)


def server_cpu_seconds(server: subprocess.Popen) -> float:
    """CPU time a server's processes have used so far: its master and the workers it forked."""
    pids = [server.pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None and int(fields[1]) == server.pid:
                pids.append(int(entry.name))
    return sum(process_cpu_seconds(pid) or 0.0 for pid in pids)


def database_backends_cpu_seconds() -> float | None:
    """CPU time the PostgreSQL backends connected to this database have used so far (a local server only)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [row[0] for row in cursor.fetchall()]
    used = [seconds for seconds in map(process_cpu_seconds, pids) if seconds is not None]
    return sum(used) if used else None


@dataclass
class CpuUse:
    """CPU spent on a run of calls: this process's, its PostgreSQL backend's (None for a remote server), and
    the SQL statements sent. CPU time, unlike rates, holds up on a shared machine."""

    python_seconds: float
    backend_seconds: float | None
    statements: int


def cpu_use(items: list, call: Callable) -> CpuUse:
    """`call(item)` for every item in this process, without a profiler, and the CPU it took."""
    from django.db import connection

    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    backend_before = backend_cpu_seconds()
    with connection.execute_wrapper(count):
        started = time.process_time()
        for item in items:
            call(item)
        python_seconds = time.process_time() - started
    backend_after = backend_cpu_seconds()
    backend = None if backend_before is None or backend_after is None else backend_after - backend_before
    return CpuUse(python_seconds, backend, statements)


def _rate_worker(call: Callable, items: list, ready, start, results) -> None:
    for item in items[:50]:
        call(item)
    ready.put(True)
    start.wait()
    started = time.perf_counter()
    for item in items:
        call(item)
    results.put(time.perf_counter() - started)


def parallel_seconds(call: Callable, items: list, processes: int) -> float:
    """Seconds `processes` processes take to `call` every item, each its share, started together after a
    warm-up. `call` is a module-level function: the processes are spawned and import it."""
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    shares = [items[index::processes] for index in range(processes)]
    workers = [context.Process(target=_rate_worker, args=(call, share, ready, start, results)) for share in shares]
    for worker in workers:
        worker.start()
    try:
        for _worker in workers:  # every process has imported and warmed up before the clock starts
            _get_while_alive(ready, workers)
        start.set()
        elapsed = max(_get_while_alive(results, workers) for _ in workers)
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
    return elapsed


def _get_while_alive(answers, workers: list, timeout: float = 600):
    """The next answer a worker process puts, or an error as soon as one of them has died without answering."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return answers.get(timeout=1)
        except queue.Empty:
            failed = [worker.exitcode for worker in workers if worker.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a measuring process failed (exit code {failed[0]})") from None
    raise TimeoutError("the measuring processes did not answer")
