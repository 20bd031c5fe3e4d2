"""`manage.py hl7_listen`: the HL7 v2 MLLP listener, one process or several sharing the port."""

from __future__ import annotations

import logging
import os
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.hl7v2 import mllp

logger = logging.getLogger("integrations.hl7v2.mllp")


class Command(BaseCommand):
    help = "Receive HL7 v2 messages over MLLP, store and apply each, and answer with its ACK."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument(
            "--port", type=int, default=mllp.DEFAULT_PORT, help="TCP port (default 2575; 0 picks a free one)."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="Listener processes sharing the port through SO_REUSEPORT (default 1; one per core is typical).",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="Database threads per process (default 4 on PostgreSQL, 1 on SQLite).",
        )
        parser.add_argument(
            "--max-message-bytes",
            type=int,
            default=mllp.DEFAULT_MAX_MESSAGE_BYTES,
            help="A frame larger than this closes the connection (default 10 MiB).",
        )
        parser.add_argument(
            "--idle-timeout",
            type=float,
            default=mllp.DEFAULT_IDLE_TIMEOUT,
            help="Seconds a connection may stay silent before it is closed (default 600).",
        )
        parser.add_argument(
            "--shutdown-grace",
            type=float,
            default=mllp.DEFAULT_SHUTDOWN_GRACE,
            help="Seconds to finish messages in flight after SIGTERM (default 30).",
        )
        parser.add_argument("--reuse-port", action="store_true", help="Bind with SO_REUSEPORT (set for workers).")

    def handle(self, *args, **options) -> None:
        workers = options["workers"]
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        if options["threads"] is not None and options["threads"] < 1:
            raise CommandError("--threads must be at least 1.")
        if options["max_message_bytes"] < 1024:
            raise CommandError("--max-message-bytes must be at least 1024.")
        if options["idle_timeout"] <= 0 or options["shutdown_grace"] < 0:
            raise CommandError("--idle-timeout must be positive and --shutdown-grace not negative.")
        if workers > 1:
            self._supervise(options)
            return

        def ready(port: int) -> None:
            self.stdout.write(
                f"HL7 MLLP listener on {options['host']}:{port} (pid {os.getpid()}, "
                f"{options['threads'] or mllp.default_threads()} database threads)"
            )
            self.stdout.flush()

        try:
            mllp.serve(
                host=options["host"],
                port=options["port"],
                threads=options["threads"],
                max_message_bytes=options["max_message_bytes"],
                idle_timeout=options["idle_timeout"],
                shutdown_grace=options["shutdown_grace"],
                reuse_port=options["reuse_port"],
                ready=ready,
            )
        except OSError as error:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {error}") from error
        self.stdout.write(f"HL7 MLLP listener (pid {os.getpid()}) stopped")

    def _supervise(self, options: dict) -> None:
        if options["port"] == 0:
            raise CommandError("--workers needs a fixed --port: each worker binds the same one.")
        program = os.path.abspath(sys.argv[0])
        start = [sys.executable, program] if program.endswith("manage.py") else [sys.executable, "-m", "django"]
        command = [
            *start,
            "hl7_listen",
            "--host",
            options["host"],
            "--port",
            str(options["port"]),
            "--max-message-bytes",
            str(options["max_message_bytes"]),
            "--idle-timeout",
            str(options["idle_timeout"]),
            "--shutdown-grace",
            str(options["shutdown_grace"]),
            "--reuse-port",
        ]
        if options["threads"] is not None:
            command += ["--threads", str(options["threads"])]
        self.stdout.write(f"HL7 MLLP listener on {options['host']}:{options['port']}: {options['workers']} workers")
        self.stdout.flush()
        if mllp.supervise(command, workers=options["workers"]) != 0:
            raise CommandError("a listener worker could not start; see the log above.")
