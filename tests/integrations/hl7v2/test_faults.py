"""The listener as its own process under faults: killed with SIGKILL mid-stream, PostgreSQL restarted under load.

These tests run `manage.py hl7_listen` as a subprocess against a database of their own: a private
PostgreSQL cluster (initdb into a temporary directory, on a free port) when the PostgreSQL server
binaries are installed, otherwise a SQLite file. The shared server on 5432 is never touched.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings

from integrations.hl7v2.mllp import frame
from tests.integrations.hl7v2.test_mllp import ack_fields, adt, read_ack

SCHEMA_SNIPPET = """
import django
from django.conf import settings
django.setup()

class NoMigrations(dict):
    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None

settings.MIGRATION_MODULES = NoMigrations()
from django.core.management import call_command
call_command("migrate", run_syncdb=True, verbosity=0)
"""


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateCluster:
    """A throw-away PostgreSQL server in a temporary directory, on a port of its own."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="hcrm-pg-"))
        self.data = self.directory / "data"
        # initdb and the server refuse to run as root; the postgres account runs them.
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.directory, "postgres")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/hcrm_faults"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run([*self.as_owner, *args], check=True, capture_output=True, timeout=timeout)

    def start(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
            "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        self._pg_ctl("start")
        admin = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("CREATE DATABASE hcrm_faults")
        admin.close()

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=60 -c shared_buffers=32MB"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"), action, "-D", str(self.data), "-l", str(self.directory / "server.log"),
            "-o", options, "-w", "-t", "60", *extra,
        )  # fmt: skip

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        try:
            self._pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="hcrm_faults")
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()


class SqliteFile:
    """The fallback when no PostgreSQL server binaries exist: a SQLite file both processes can open."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="hcrm-faults-"))
        self.url = f"sqlite:///{self.directory / 'faults.sqlite3'}"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        connection = sqlite3.connect(self.directory / "faults.sqlite3", timeout=10)
        try:
            return connection.execute(sql.replace("%s", "?"), params).fetchall()
        finally:
            connection.close()


def _environment(database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="tests.settings",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="module")
def database():
    """A database with the current schema that subprocesses can use; private PostgreSQL when possible."""
    bin_dir = _postgres_bin()
    store = PrivateCluster(bin_dir) if bin_dir else SqliteFile()
    store.start()
    try:
        subprocess.run(
            [sys.executable, "-c", SCHEMA_SNIPPET],
            env=_environment(store.url),
            cwd=settings.BASE_DIR,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield store
    finally:
        store.stop()


class ListenerProcess:
    """`manage.py hl7_listen` in a subprocess; its output goes to a log file."""

    def __init__(self, database_url: str, log: Path, *, port: int = 0, extra: tuple[str, ...] = ()) -> None:
        self.database_url = database_url
        self.log = log
        self.port = port
        self.extra = extra
        self.process: subprocess.Popen | None = None
        self.ready_lines: list[str] = []

    def start(self, expect_ready: int = 1) -> ListenerProcess:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "hl7_listen", "--port", str(self.port), *self.extra],
                env=_environment(self.database_url),
                cwd=settings.BASE_DIR,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines = self.log.read_bytes()[offset:].decode("utf-8", "replace").splitlines()
            self.ready_lines = [line for line in lines if line.startswith("HL7 MLLP listener on ") and "(pid" in line]
            if len(self.ready_lines) >= expect_ready:
                self.port = int(self.ready_lines[0].split(":")[1].split()[0])
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"the listener did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def _send_all(port: int, messages: list[tuple[str, bytes]], outcomes: dict[str, list[str]]) -> None:
    """Send each message and wait for its ACK before the next; stop at the first close or error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for control_id, payload in messages:
                sock.sendall(frame(payload))
                ack = read_ack(sock, timeout=60)
                if not ack:
                    outcomes[control_id].append("closed")
                    return
                outcomes[control_id].append(ack_fields(ack)["MSA"][1])
    except OSError:
        return


def _applied_once(database, prefix: str) -> dict[str, tuple[int, str]]:
    """control id -> (stored copies that are not redeliveries, status of the first one)."""
    rows = database.rows(
        "SELECT control_id, status, attempts FROM integrations_inboundmessage "
        "WHERE control_id LIKE %s AND status <> 'duplicate' ORDER BY id",
        (f"{prefix}%",),
    )
    found: dict[str, tuple[int, str]] = {}
    for control_id, status, _attempts in rows:
        count, first = found.get(control_id, (0, status))
        found[control_id] = (count + 1, first)
    return found


def _patients_per_identifier(database, prefix: str) -> dict[str, int]:
    rows = database.rows(
        "SELECT value, count(DISTINCT patient_id) FROM patients_patientidentifier WHERE value LIKE %s GROUP BY value",
        (f"{prefix}%",),
    )
    return dict(rows)


def test_listener_killed_mid_stream_keeps_every_acknowledged_message_and_applies_resends_once(database, tmp_path):
    messages = [(f"KILL-{index:03d}", adt(f"KILL-{index:03d}", mrn=f"MK{index:03d}")) for index in range(45)]
    streams = [messages[start::3] for start in range(3)]
    listener = ListenerProcess(database.url, tmp_path / "listener.log", extra=("--threads", "2")).start()
    outcomes: dict[str, list[str]] = defaultdict(list)
    senders = [threading.Thread(target=_send_all, args=(listener.port, stream, outcomes)) for stream in streams]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 30
    while sum(codes == ["AA"] for codes in list(outcomes.values())) < 12 and time.monotonic() < deadline:
        time.sleep(0.005)
    listener.kill()
    for sender in senders:
        sender.join(30)

    acknowledged = {control_id for control_id, codes in outcomes.items() if codes == ["AA"]}
    unacknowledged = [(control_id, payload) for control_id, payload in messages if control_id not in acknowledged]
    assert 12 <= len(acknowledged) < len(messages)
    assert {code for codes in outcomes.values() for code in codes} <= {"AA", "closed"}
    stored = _applied_once(database, "KILL-")
    assert {control_id: stored.get(control_id) for control_id in acknowledged} == dict.fromkeys(
        acknowledged, (1, "applied")
    )

    # The sender reconnects to the restarted listener and resends everything it has no AA for, plus a few
    # it has (a sender that lost the ACK on the wire would do the same).
    restarted = ListenerProcess(database.url, tmp_path / "listener.log", port=listener.port).start()
    resent = unacknowledged + [item for item in messages if item[0] in acknowledged][:5]
    resend_outcomes: dict[str, list[str]] = defaultdict(list)
    _send_all(restarted.port, resent, resend_outcomes)
    assert restarted.terminate() == 0

    assert dict(resend_outcomes) == {control_id: ["AA"] for control_id, _payload in resent}
    rows = database.rows(
        "SELECT control_id, status, attempts FROM integrations_inboundmessage "
        "WHERE control_id LIKE %s AND status <> 'duplicate'",
        ("KILL-%",),
    )
    assert sorted(rows) == [(control_id, "applied", 1) for control_id, _payload in messages]
    assert _patients_per_identifier(database, "MK") == {f"MK{index:03d}": 1 for index in range(45)}


def test_postgresql_restarted_under_load_never_gets_aa_for_an_unstored_message(database, tmp_path):
    if not isinstance(database, PrivateCluster):
        pytest.skip("needs the PostgreSQL server binaries (initdb, pg_ctl) for a private cluster")
    messages = [(f"PGR-{index:03d}", adt(f"PGR-{index:03d}", mrn=f"MG{index:03d}")) for index in range(60)]
    listener = ListenerProcess(database.url, tmp_path / "listener.log", extra=("--threads", "3")).start()
    outcomes: dict[str, list[str]] = defaultdict(list)
    deadline = time.monotonic() + 90

    def send_until_acknowledged(stream: list[tuple[str, bytes]]) -> None:
        sock = None
        for control_id, payload in stream:
            while time.monotonic() < deadline:
                try:
                    if sock is None:
                        sock = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
                    sock.sendall(frame(payload))
                    ack = read_ack(sock, timeout=30)
                except OSError:
                    ack = b""
                code = ack_fields(ack)["MSA"][1] if ack else "closed"
                outcomes[control_id].append(code)
                if code == "AA":
                    break
                if sock is not None and code == "closed":
                    sock.close()
                    sock = None
                time.sleep(0.1)
        if sock is not None:
            sock.close()

    senders = [threading.Thread(target=send_until_acknowledged, args=(messages[start::3],)) for start in range(3)]
    for sender in senders:
        sender.start()
    while sum("AA" in codes for codes in list(outcomes.values())) < 10 and time.monotonic() < deadline:
        time.sleep(0.005)
    database.restart()
    for sender in senders:
        sender.join(60)

    assert listener.process.poll() is None  # recovered on its own: the same process, never restarted
    assert listener.terminate() == 0
    failures = [code for codes in outcomes.values() for code in codes if code != "AA"]
    assert failures  # the restart did hit messages in flight
    assert set(failures) <= {"AE", "closed"}
    assert {control_id: codes[-1] for control_id, codes in outcomes.items()} == {
        control_id: "AA" for control_id, _payload in messages
    }
    assert _applied_once(database, "PGR-") == {control_id: (1, "applied") for control_id, _payload in messages}
    assert _patients_per_identifier(database, "MG") == {f"MG{index:03d}": 1 for index in range(60)}


def test_hl7_listen_with_two_workers_shares_the_port_and_stops_on_sigterm(database, tmp_path):
    port = _free_port()
    listener = ListenerProcess(
        database.url, tmp_path / "workers.log", port=port, extra=("--workers", "2", "--threads", "1")
    ).start(expect_ready=2)
    pids = {line.split("(pid ")[1].split(",")[0] for line in listener.ready_lines}
    outcomes: dict[str, list[str]] = defaultdict(list)
    streams = [[(f"WRK-{client}-{number}", adt(f"WRK-{client}-{number}", mrn=f"MW{client}{number}")) for number in range(3)] for client in range(4)]  # fmt: skip
    senders = [threading.Thread(target=_send_all, args=(port, stream, outcomes)) for stream in streams]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(30)

    assert listener.terminate() == 0
    assert len(pids) == 2
    assert dict(outcomes) == {control_id: ["AA"] for stream in streams for control_id, _payload in stream}
    assert len(_applied_once(database, "WRK-")) == 12
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
