"""The MLLP door: an asyncio TCP listener that frames HL7 v2 messages and answers each with its ACK.

MLLP wraps every message as <VT> message <FS><CR> (0x0B ... 0x1C 0x0D). One connection carries
any number of messages; each is handed to the pipeline (`hl7_receive`), which stores it raw,
applies it and returns the ACK. Messages on one connection are processed and acknowledged in the
order they arrived. Database work runs on a few worker threads, each with its own Django
connection, so the event loop keeps serving every other connection meanwhile.

When the pipeline fails (the database is down, say) the sender never gets AA: it gets an AE that
says the message was not processed, or, if not even an AE can be built, the connection is closed.
Either way the sender keeps the message and resends it; a redelivery of one that was applied is
acknowledged without being applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import logging
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
FRAMING_BYTES = b"\x0b\x1c"
DEFAULT_PORT = 2575
DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024
DEFAULT_IDLE_TIMEOUT = 600.0
DEFAULT_SHUTDOWN_GRACE = 30.0
STARTUP_SECONDS = 5.0
READ_CHUNK = 64 * 1024

Handler = Callable[..., bytes]

logger = logging.getLogger(__name__)


class FrameTooLarge(Exception):
    """A frame grew past the size limit without its end block."""


class FrameReader:
    """Cuts a byte stream into MLLP message payloads, whatever the packet boundaries.

    Bytes outside a frame (line noise, a sender's stray newlines) are skipped and counted. Framing
    bytes found inside a payload (a doubled start block, a lone 0x1C) are dropped: they are never
    part of an HL7 message, and the parser would otherwise read them as text.
    """

    def __init__(self, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_message_bytes = max_message_bytes
        self.skipped = 0
        self._buffer = bytearray()
        self._in_frame = False
        self._scanned = 0

    @property
    def partial(self) -> int:
        """Bytes of a frame begun but not yet ended."""
        return len(self._buffer) if self._in_frame else 0

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next bytes received; return the payloads of the frames they complete."""
        buffer = self._buffer
        buffer += data
        payloads = []
        while buffer:
            if not self._in_frame:
                start = buffer.find(START_BLOCK)
                if start < 0:
                    self.skipped += len(buffer)
                    buffer.clear()
                    break
                self.skipped += start
                del buffer[: start + 1]
                self._in_frame = True
                self._scanned = 0
            end = buffer.find(END_BLOCK, self._scanned)
            if end < 0:
                # The end block may straddle two packets: look again from its first byte.
                self._scanned = max(0, len(buffer) - 1)
                if len(buffer) > self.max_message_bytes + 1:
                    raise FrameTooLarge(f"no end block within {self.max_message_bytes} bytes")
                break
            if end > self.max_message_bytes:
                raise FrameTooLarge(f"frame of {end} bytes is over the limit of {self.max_message_bytes}")
            payload = bytes(buffer[:end])
            del buffer[: end + len(END_BLOCK)]
            self._in_frame = False
            if START_BLOCK in payload or b"\x1c" in payload:
                payload = payload.translate(None, FRAMING_BYTES)
            payloads.append(payload)
        return payloads


def frame(payload: bytes) -> bytes:
    """Wrap one message in an MLLP frame."""
    return START_BLOCK + payload + END_BLOCK


def _version_tuple(version: bytes) -> tuple[int, ...]:
    parts = []
    for part in version.split(b".")[:3]:
        digits = bytes(byte for byte in part if 48 <= byte <= 57)
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def error_ack(payload: bytes, *, text: str, code: str = "207", now: dt.datetime | None = None) -> bytes | None:
    """An original-mode AE for `payload`, built from its MSH alone, or None when it has no readable MSH.

    The ACK uses the inbound field separator, encoding characters, version and character set, echoes
    MSH-10 in MSA-2, and carries an ERR segment with the HL7 table 0357 code (207: application
    internal error) in the shape the inbound version expects.
    """
    data = payload.lstrip(b"\xef\xbb\xbf\x0b\x1c\r\n\t ")
    if not data.startswith(b"MSH") or len(data) < 8:
        return None
    separator = data[3:4]
    if separator.isalnum() or separator in b"\r\n":
        return None
    line_end = len(data)
    for terminator in (b"\r", b"\n"):
        position = data.find(terminator)
        if 0 <= position < line_end:
            line_end = position
    fields = data[:line_end].rstrip(b" ").split(separator)
    encoding = fields[1] if len(fields) > 1 and fields[1] else b"^~\\&"
    component = encoding[0:1] or b"^"
    subcomponent = encoding[3:4] or b"&"

    def field(number: int) -> bytes:
        # MSH-1 is the separator itself, so MSH-n sits at index n - 1 after the split.
        return fields[number - 1] if len(fields) >= number else b""

    version = field(12).split(component)[0]
    parsed_version = _version_tuple(version)
    trigger = field(9).split(component)[1] if component in field(9) else b""
    message_type = b"ACK" + (component + trigger if trigger else b"")
    if parsed_version >= (2, 4) and trigger:
        message_type += component + b"ACK"
    stamp = (now or dt.datetime.now(dt.UTC).astimezone()).strftime("%Y%m%d%H%M%S").encode()
    text_bytes = text.encode("ascii", "replace")
    for reserved in (separator, component, subcomponent, encoding[1:2], encoding[2:3]):
        if reserved:
            text_bytes = text_bytes.replace(reserved, b" ")
    msh = [
        b"MSH",
        encoding,
        field(5),
        field(6),
        field(3),
        field(4),
        stamp,
        b"",
        message_type,
        uuid.uuid4().hex[:20].encode(),
        field(11) or b"P",
        field(12),
    ]
    charset = field(18)
    if charset:
        msh += [b""] * 5 + [charset]
    code_bytes = code.encode("ascii")
    if parsed_version >= (2, 5):
        err = separator.join(
            [b"ERR", b"", b"", component.join([code_bytes, b"Application internal error", b"HL70357"]), b"E"]
            + [b"", b"", b"", text_bytes]
        )
    else:
        err = (
            b"ERR"
            + separator
            + component * 3
            + subcomponent.join([code_bytes, b"Application internal error", b"HL70357"])
        )
    msa = separator.join([b"MSA", b"AE", field(10), text_bytes])
    return b"\r".join([separator.join(msh), msa, err]) + b"\r"


NOT_PROCESSED = "Message not processed, the receiver could not store it. Resend it later."


def _default_handler() -> Handler:
    from integrations.hl7v2.pipeline import hl7_receive

    return hl7_receive


def default_threads() -> int:
    """Database worker threads per process: SQLite takes one writer at a time, PostgreSQL several."""
    from django.db import connection

    return 1 if connection.vendor == "sqlite" else 4


class DatabaseWorkers:
    """A few long-lived threads that run the pipeline, each keeping its own Django database connection.

    Each message runs in a fresh context (no request or audit state carried over from the last one);
    after it, a connection that saw an error (a database restart) or outlived CONN_MAX_AGE is dropped,
    so the next message opens a new one.
    """

    def __init__(self, *, count: int, handler: Handler) -> None:
        self._handler = handler
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"mllp-db-{index}", daemon=True) for index in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, loop: asyncio.AbstractEventLoop, payload: bytes, peer: str) -> asyncio.Future:
        future = loop.create_future()
        self._queue.put((loop, future, payload, peer))
        return future

    def stop(self) -> None:
        """Let the threads finish what they hold, close their connections and end."""
        for _thread in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _call(self, payload: bytes, peer: str) -> bytes:
        from auditlog.context import auditlog_value

        # django-auditlog connects its "who did it" receivers globally, for every thread, and each one
        # reads the audit context of the thread that saves. A context that is merely empty makes a
        # receiver connected by another thread fail on its missing "signal_duid"; this one matches none.
        auditlog_value.set({"signal_duid": None})
        return self._handler(payload, transport="mllp", peer=peer)

    def _run(self) -> None:
        from django.db import connections

        while True:
            item = self._queue.get()
            if item is None:
                break
            loop, future, payload, peer = item
            try:
                try:
                    result = contextvars.Context().run(self._call, payload, peer)
                finally:
                    _connections_tidy()
            except Exception as error:
                loop.call_soon_threadsafe(_settle, future, None, error)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)
        connections.close_all()


def _connections_tidy() -> None:
    """After a message: drop a connection that saw an error or outlived its age; keep a healthy one as it is.

    `close_old_connections()` after every message would also make Django ping the server (`SELECT 1`,
    with CONN_HEALTH_CHECKS) before the next one: a round trip per message for nothing. A connection
    broken since (the server restarted) fails its next query, which gets an AE, and is dropped here.
    """
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        expired = connection.close_at is not None and time.monotonic() >= connection.close_at
        if connection.errors_occurred or expired or connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _control_id(payload: bytes) -> str:
    """MSH-10 for log lines (never the message itself: it holds patient data)."""
    data = payload.lstrip(b"\xef\xbb\xbf\r\n\t ")
    if not data.startswith(b"MSH") or len(data) < 4:
        return ""
    first_line = data.split(b"\r", 1)[0].split(b"\n", 1)[0]
    fields = first_line.split(data[3:4])
    return fields[9].decode("latin-1")[:40] if len(fields) > 9 else ""


class MLLPServer:
    """The listener: accepts connections, reads frames, runs the pipeline, writes ACKs."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        handler: Handler | None = None,
        threads: int | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
        reuse_port: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.handler = handler
        self.threads = threads
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self.shutdown_grace = shutdown_grace
        self.reuse_port = reuse_port
        self._server: asyncio.Server | None = None
        self._workers: DatabaseWorkers | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        # Connection task -> True while it waits for the next bytes (safe to cancel at shutdown).
        self._connections: dict[asyncio.Task, bool] = {}

    async def start(self) -> int:
        """Bind and start accepting; return the port bound (useful with port 0)."""
        self._stop = asyncio.Event()
        self._workers = DatabaseWorkers(
            count=self.threads or default_threads(), handler=self.handler or _default_handler()
        )
        self._server = await asyncio.start_server(
            self._serve_connection,
            self.host,
            self.port,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
            limit=READ_CHUNK,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def request_stop(self) -> None:
        """Ask for a graceful shutdown (call on the server's event loop)."""
        if self._stop is not None:
            self._stop.set()

    async def run(self, ready: Callable[[int], None] | None = None) -> None:
        """Serve until `request_stop()`, then stop accepting, finish messages in flight and close."""
        port = await self.start()
        if ready is not None:
            ready(port)
        await self._stop.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        self._stopping = True
        self._server.close()
        for task, waiting in list(self._connections.items()):
            if waiting:
                task.cancel()
        pending = set(self._connections)
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=self.shutdown_grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        await self._server.wait_closed()
        await asyncio.get_running_loop().run_in_executor(None, self._workers.stop)
        logger.info("HL7 MLLP listener on %s:%s stopped", self.host, self.port)

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections[task] = False
        address = writer.get_extra_info("peername")
        peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address or "")
        frames = FrameReader(max_message_bytes=self.max_message_bytes)
        pending: deque[bytes] = deque()
        handled = 0
        reason = "closed by peer"
        logger.info("HL7 MLLP connection from %s", peer)
        try:
            while True:
                if self._stopping:
                    # Frames already read but not started get no ACK: the sender still holds them and resends.
                    reason = "listener stopping"
                    break
                if not pending:
                    self._connections[task] = True
                    try:
                        async with asyncio.timeout(self.idle_timeout):
                            data = await reader.read(READ_CHUNK)
                    except TimeoutError:
                        reason = f"idle for {self.idle_timeout:g} s"
                        break
                    finally:
                        self._connections[task] = False
                    if not data:
                        if frames.partial:
                            reason = f"closed by peer in the middle of a message ({frames.partial} bytes discarded)"
                        break
                    skipped = frames.skipped
                    try:
                        pending.extend(frames.feed(data))
                    except FrameTooLarge as error:
                        logger.warning("HL7 MLLP connection from %s closed: %s", peer, error)
                        reason = "frame too large"
                        break
                    if frames.skipped > skipped:
                        logger.warning(
                            "HL7 MLLP connection from %s: %d bytes outside MLLP frames skipped",
                            peer,
                            frames.skipped - skipped,
                        )
                    continue
                ack = await self._process(pending.popleft(), peer)
                if ack is None:
                    reason = "message could not be processed"
                    break
                writer.write(frame(ack))
                await writer.drain()
                handled += 1
        except asyncio.CancelledError:
            reason = "listener stopping"
        except (ConnectionError, OSError) as error:
            reason = f"connection error: {error}"
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            logger.info("HL7 MLLP connection from %s ended after %d messages: %s", peer, handled, reason)

    async def _process(self, payload: bytes, peer: str) -> bytes | None:
        loop = asyncio.get_running_loop()
        try:
            ack = await self._workers.submit(loop, payload, peer)
        except Exception:
            logger.exception("HL7 message %r from %s not processed", _control_id(payload), peer)
            ack = None
        else:
            if ack:
                return ack
            logger.error("HL7 message %r from %s: the pipeline returned no ACK", _control_id(payload), peer)
        return error_ack(payload, text=NOT_PROCESSED)


def serve(
    *,
    host: str,
    port: int,
    threads: int | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
    reuse_port: bool = False,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Run one listener in this process until SIGTERM or SIGINT, then shut down gracefully."""
    server = MLLPServer(
        host=host,
        port=port,
        threads=threads,
        max_message_bytes=max_message_bytes,
        idle_timeout=idle_timeout,
        shutdown_grace=shutdown_grace,
        reuse_port=reuse_port,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, server.request_stop)
        await server.run(ready)

    asyncio.run(main())


class ListenerThread:
    """A listener on its own event loop in a background thread of this process (embedding, tests)."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("port", 0)
        self.server = MLLPServer(**options)
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mllp-listener", daemon=True)

    def start(self) -> ListenerThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.server.request_stop)
        self._thread.join(self.server.shutdown_grace + 10)

    def _run(self) -> None:
        def ready(port: int) -> None:
            self.port = port
            self._ready.set()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await self.server.run(ready)

        try:
            asyncio.run(main())
        except BaseException as error:
            self._error = error
            self._ready.set()
            raise

    def __enter__(self) -> ListenerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def supervise(command: list[str], *, workers: int, restart_delay: float = 1.0) -> int:
    """Run `workers` copies of a single-process listener command; restart any that dies; stop on a signal.

    Each copy is its own process with its own Django set-up and binds the same port with SO_REUSEPORT,
    so the kernel spreads incoming connections over them.
    """
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        stopping.set()

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    children: dict[int, subprocess.Popen] = {}
    started: dict[int, float] = {}
    failed = False
    try:
        for index in range(workers):
            children[index], started[index] = subprocess.Popen(command), time.monotonic()  # noqa: S603 (our own command line)
        logger.info("HL7 MLLP listener: %d worker processes started", workers)
        while not stopping.is_set():
            for index, child in list(children.items()):
                code = child.poll()
                if code is None or stopping.is_set():
                    continue
                if time.monotonic() - started[index] < STARTUP_SECONDS:
                    # A worker that cannot even start (port taken, bad settings) will not start on retry.
                    logger.error("HL7 MLLP worker %d (pid %d) failed at start with %s", index, child.pid, code)
                    failed = True
                    stopping.set()
                    break
                logger.error("HL7 MLLP worker %d (pid %d) exited with %s; restarting", index, child.pid, code)
                time.sleep(restart_delay)
                children[index], started[index] = subprocess.Popen(command), time.monotonic()  # noqa: S603 (our own command line)
            stopping.wait(0.5)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(DEFAULT_SHUTDOWN_GRACE + 10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 1 if failed else 0
