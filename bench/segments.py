"""Segment figures: recomputing every patient's statistics, then counting and listing typical segments."""

from __future__ import annotations

import datetime as dt
import time

from django.db import connection

from bench.harness import Report, Timing, ms, table, time_each

COUNT_SAMPLES = 7
LIST_SAMPLES = 20
PAGE = 25
SLOW_MS = 1000.0


def _segments(today: dt.date) -> dict[str, dict]:
    """Single filters and the combinations the issue names; values exist in the demo hospital."""
    return {
        "everyone (no filter)": {},
        "district: 广州市 越秀区": {"cities": ["广州市"], "districts": ["越秀区"]},
        "region + age 60–80 + female": {"cities": ["广州市"], "age_min": 60, "age_max": 80, "sexes": ["female"]},
        "source: referral or online": {"sources": ["referral", "online"]},
        "ICD-10 I10* + last visit within a year": {
            "diagnosis_prefixes": ["I10"],
            "diagnosis_system": "icd10",
            "last_visit_within_days": 365,
        },
        "TCM syndrome ZYV* (widest prefix)": {"diagnosis_prefixes": ["ZYV"], "diagnosis_system": "tcm_syndrome"},
        "department XXG + RFM at risk": {"departments": ["XXG"], "rfm_groups": ["at_risk"]},
        "consent: marketing by SMS granted": {"consent": {"purpose": "marketing", "channel": "sms", "granted": True}},
        "spending ≥ 5,000 yuan": {"spending_min": 5000},
        "tag 高血压": {"tags": ["高血压"]},
        "visited in the last 90 days": {"visit_from": (today - dt.timedelta(days=90)).isoformat()},
        "RFM loyal, recency 4–5": {"rfm_groups": ["loyal"], "recency_scores": [4, 5]},
    }


def _recompute(report: Report) -> None:
    from patients.models import Patient
    from patients.services.stats import patient_stats_analyze, patient_stats_recompute

    patients = Patient.objects.count()
    started = time.perf_counter()
    written = patient_stats_recompute(batch_size=10_000)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    patient_stats_analyze()
    analyze = time.perf_counter() - started
    report.section(
        "Patient statistics (RFM) recompute",
        [
            f"`patient_stats_recompute()` over all {patients:,} patients in batches of 10,000 ids, one "
            "`INSERT … SELECT … ON CONFLICT DO UPDATE` per batch aggregating encounters and charges: "
            f"{written:,} rows in {seconds:,.1f} s = **{written / seconds:,.0f} patients/s**; "
            f"`ANALYZE` afterwards {analyze:.1f} s. The nightly task runs the same batches, one Celery task each.",
        ],
    )


def _explain(spec: dict, today: dt.date) -> list[str]:
    from patients.selectors.segments import segment_patients

    sql, params = segment_patients(spec, today=today).order_by().query.get_compiler(using="default").as_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) SELECT COUNT(*) FROM ({sql}) members", params)
        return ["```", *[row[0] for row in cursor.fetchall()], "```"]


def segments(report: Report) -> None:
    from django.utils import timezone

    from hcrm.models import User
    from patients.selectors import patients_visible_to
    from patients.selectors.segments import segment_patients

    _recompute(report)
    today = timezone.localdate()
    admin = User.objects.get(username="admin")
    doctor = User.objects.get(username="doctor")
    rows, counts = [], {}
    for label, spec in _segments(today).items():
        counted: list[int] = []
        count = time_each(
            label,
            range(COUNT_SAMPLES),
            lambda _i, spec=spec, counted=counted: counted.append(segment_patients(spec, today=today).count()),
            warmup=2,
        )
        everyone = time_each(
            label,
            range(LIST_SAMPLES),
            lambda _i, spec=spec: list(
                segment_patients(spec, patients=patients_visible_to(admin), today=today).order_by("mrn")[:PAGE]
            ),
        )
        scoped = time_each(
            label,
            range(LIST_SAMPLES),
            lambda _i, spec=spec: list(
                segment_patients(spec, patients=patients_visible_to(doctor), today=today).order_by("mrn")[:PAGE]
            ),
        )
        counts[label] = count
        rows.append(
            [
                label,
                f"{counted[-1]:,}",
                ms(count.p50),
                ms(count.p95),
                ms(everyone.p50),
                ms(everyone.p95),
                ms(scoped.p50),
                ms(scoped.p95),
            ]
        )
    overall = Timing("all counts", [sample for timing in counts.values() for sample in timing.samples_ms])
    lines = [
        f"`segment_patients(spec).count()` — what `GET /api/v1/segments/{{id}}/count/` and the builder's live count run — "
        f"{COUNT_SAMPLES} times per segment after 2 warm-ups, and the first page ({PAGE} rows by MRN) of members as an "
        f"administrator (all patients) and as the demo doctor (internal medicine only), {LIST_SAMPLES} times each. "
        "Statistics-based filters read the rows recomputed above.",
        "",
        *table(
            [
                "segment",
                "patients",
                "count p50",
                "count p95",
                "list p50",
                "list p95",
                "doctor list p50",
                "doctor list p95",
            ],
            rows,
        ),
        "",
        f"All counts together: p50 {ms(overall.p50)}, p95 {ms(overall.p95)}.",
    ]
    worst_label, worst = max(counts.items(), key=lambda item: item[1].p95)
    if worst.p95 > SLOW_MS:
        lines += [
            "",
            f"Slowest count ({worst_label}, p95 {ms(worst.p95)}), explained:",
            "",
            *_explain(_segments(today)[worst_label], today),
        ]
    else:
        lines += [
            "",
            f"Every count answered within {SLOW_MS / 1000:.0f} s at p95 (slowest: {worst_label}, {ms(worst.p95)}).",
        ]
    report.section("Segments at scale", lines)
