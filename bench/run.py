"""`make bench`: performance figures on PostgreSQL, written to docs/benchmarks.md.

    python -m bench.run [--patients 1000000] [--reuse]

Creates (or, with --reuse, keeps) the database named by BENCH_DATABASE_URL,
seeds the demo hospital, then measures every section in one run so that the
ratios it reports compare like with like on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/hcrm_bench"
# --only names that stand for several sections.
SECTION_GROUPS = {"fhir": ["fhir-bulk", "fhir-bundles"]}


def _prepare_environment(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("STATIC_MANIFEST", "false")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hcrm.settings")
    # Redis as broker and cache, as in production; a database number of its own.
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")


def _recreate_database(url: str) -> None:
    import psycopg2

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or None,
        dbname="postgres",
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def _booking_options(args, module) -> dict:
    workers = args.booking_workers or module.SERVER_WORKERS
    threads = args.booking_threads or module.SERVER_THREADS
    return {
        "patients": args.booking_patients,
        "workers": workers,
        "threads": threads,
        "clients": args.booking_clients or workers * threads,
        "compare_clients": args.booking_compare_clients,
    }


def _bundle_options(args, module) -> dict:
    return {
        "count": args.fhir_bundles,
        "workers": args.fhir_workers or module.SERVER_WORKERS,
        "threads": args.fhir_threads or module.SERVER_THREADS,
        "clients": args.fhir_clients or module.CLIENTS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--messages", type=int, default=100_000, help="outbox messages to queue and deliver")
    parser.add_argument("--fhir-patients", type=int, default=1_000_000, help="Patient lines in the NDJSON import")
    parser.add_argument("--fhir-bundles", type=int, default=1_500, help="FHIR transaction bundles to post over HTTP")
    parser.add_argument(
        "--fhir-clients",
        type=int,
        help="client connections posting the bundles (default: bench/fhir_bundles.py's choice)",
    )
    parser.add_argument("--fhir-workers", type=int, help="gunicorn workers of the FHIR server")
    parser.add_argument("--fhir-threads", type=int, help="threads per gunicorn worker of the FHIR server")
    parser.add_argument("--booking-patients", type=int, default=2_000, help="patients racing for the released places")
    parser.add_argument(
        "--booking-clients",
        type=int,
        help="client connections the booking patients share (default: server workers × threads)",
    )
    parser.add_argument(
        "--booking-compare-clients", type=int, default=32, help="client connections of the second, comparison burst"
    )
    parser.add_argument("--booking-workers", type=int, help="gunicorn workers of the booking server")
    parser.add_argument("--booking-threads", type=int, help="threads per gunicorn worker of the booking server")
    parser.add_argument("--followup-discharges", type=int, default=100_000, help="discharges to make tasks for")
    parser.add_argument("--followup-tasks", type=int, default=1_000_000, help="follow-up tasks under the worklists")
    parser.add_argument(
        "--followup-responses", type=int, default=1_000_000, help="satisfaction responses under the dashboard"
    )
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SECTION",
        help="measure only these sections (with --reuse); fhir is fhir-bulk and fhir-bundles",
    )
    args = parser.parse_args()

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if not url.startswith("postgres"):
        print("make bench measures PostgreSQL: set BENCH_DATABASE_URL=postgres://…", file=sys.stderr)
        return 2
    _prepare_environment(url)
    if not args.reuse:
        _recreate_database(url)

    import django

    django.setup()
    from django.core.management import call_command

    from bench import appointments as appointments_bench
    from bench import fhir as fhir_bench
    from bench import fhir_bundles, foundation, outbox, segments
    from bench import followups as followups_bench
    from bench.harness import Report
    from bench.hl7 import hl7_mllp

    options = [f"--patients {args.patients}"] if args.patients != 1_000_000 else []
    options += ["--reuse"] if args.reuse else []
    options += [f"--only {name}" for name in args.only]
    for name in (
        "messages",
        "fhir_patients",
        "fhir_bundles",
        "fhir_clients",
        "fhir_workers",
        "fhir_threads",
        "booking_patients",
        "booking_clients",
        "booking_compare_clients",
        "booking_workers",
        "booking_threads",
        "followup_discharges",
        "followup_tasks",
        "followup_responses",
    ):
        value = getattr(args, name)
        if value is not None and value != parser.get_default(name):
            options.append(f"--{name.replace('_', '-')} {value}")
    command = "make bench" + (f" BENCH_ARGS='{' '.join(options)}'" if options else "")
    report = Report(title="HCRM benchmarks", command=command)

    started = time.perf_counter()
    call_command("migrate", "--noinput", verbosity=0)
    migrate_seconds = time.perf_counter() - started
    output = Path(args.output)
    sections = {
        "seed": lambda: foundation.seed(report, patients=args.patients, migrate_seconds=migrate_seconds),
        "search": lambda: foundation.search(report),
        "page": lambda: foundation.patient_page(report),
        "api": lambda: foundation.api_list(report),
        "segments": lambda: segments.segments(report),
        "outbox": lambda: outbox.outbox(report, count=args.messages),
        "fhir-bulk": lambda: fhir_bench.bulk(report, patients=args.fhir_patients),
        "fhir-bundles": lambda: fhir_bundles.bundles(report, **_bundle_options(args, fhir_bundles)),
        "hl7": lambda: hl7_mllp(report),
        "booking": lambda: appointments_bench.booking(report, **_booking_options(args, appointments_bench)),
        "followups": lambda: followups_bench.followups(
            report,
            discharges=args.followup_discharges,
            tasks=args.followup_tasks,
            responses=args.followup_responses,
        ),
    }
    only = {name for given in args.only for name in SECTION_GROUPS.get(given, [given])}
    unknown = only - set(sections)
    if unknown:
        print(f"unknown sections: {', '.join(sorted(unknown))}; choose from {', '.join(sections)}", file=sys.stderr)
        return 2
    for name, measure in sections.items():
        if only and name not in only:
            continue
        measure()
        # Written after every section, so a late failure keeps what was measured before it.
        report.write(output)
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
