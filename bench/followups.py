"""Follow-up figures: making the tasks of 100,000 discharges, the worklists over 1,000,000 tasks, and the
satisfaction dashboard over 1,000,000 responses.

    python -m bench.run --reuse --only followups [--followup-discharges 100000] [--followup-tasks 1000000]
        [--followup-responses 1000000]

Discharges, tasks and responses are written in bulk with `INSERT … SELECT generate_series(…)` against
the patients and staff the seed made; what is measured runs through the production code: the periodic
sweep (`followups_sweep`), the trigger an HL7 A03 calls (`tasks_for_encounter`), and the console pages
through Django's test client, signed in as the demo hospital's staff.
"""

from __future__ import annotations

import datetime as dt
import time

from django.conf import settings
from django.db import connection, reset_queries
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from bench.harness import Report, Timing, ms, table, time_each

SOURCE_SYSTEM = "bench-followups"
PLAN_NAME = "出院随访（基准测试）"
OFFSETS = [3, 7, 30, 90]
# Discharges of the last two weeks: every offset is still worth making (none is past the late limit).
DISCHARGE_DAYS = 14
TRIGGER_SAMPLE = 2_000
PAGE_SAMPLES = 40
# Fill-in tasks carry a negative source id: no encounter has one, so they never meet a real task.
FILL_SOURCE = -1


def followups(report: Report, *, discharges: int, tasks: int, responses: int) -> None:
    plan = _plan()
    _generation(report, plan, discharges=discharges)
    _worklists(report, plan, total=tasks)
    _satisfaction(report, total=responses)


def _execute(sql: str, params=None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _scalar(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _analyze(*tables: str) -> None:
    # What autovacuum does on a production server after a bulk load (it is off on the benchmark machine).
    with connection.cursor() as cursor:
        for name in tables:
            cursor.execute(f"VACUUM ANALYZE {name}")


def _plan():
    """The built-in questionnaires, and one active discharge plan for every department (days 3, 7, 30, 90)."""
    from followups.builtin import post_discharge
    from followups.models import FollowUpPlan, Questionnaire
    from followups.services import builtin_questionnaires_load, plan_save
    from hcrm.models import User

    builtin_questionnaires_load()
    admin = User.objects.get(username="admin")
    plan = FollowUpPlan.objects.filter(name=PLAN_NAME).first()
    data = {
        "name": PLAN_NAME,
        "active": True,
        "trigger": "discharge",
        "offsets": OFFSETS,
        "questionnaire": Questionnaire.objects.get(code=post_discharge.CODE),
        "channel": "phone",
        "assignee_kind": "role",
        "assignee_role": "nurse",
    }
    return plan_save(actor=admin, data=data, plan=plan)


# --- 1. Making tasks ------------------------------------------------------------------------------


def _discharges_insert(count: int, *, prefix: str, ended_from: dt.datetime, ended_to: dt.datetime) -> int:
    """`count` finished inpatient stays of living patients in clinical departments, discharged in the range."""
    return _execute(
        """
        WITH people AS (
            SELECT array_agg(id) AS ids FROM patients_patient WHERE merged_into_id IS NULL AND NOT is_deceased
        ), departments AS (
            SELECT array_agg(id ORDER BY code) AS ids FROM hcrm_department WHERE kind = 'clinical' AND is_active
        ), stays AS (
            SELECT g,
                   people.ids[1 + floor(random() * cardinality(people.ids))::int] AS patient_id,
                   departments.ids[1 + floor(random() * cardinality(departments.ids))::int] AS department_id,
                   %(ended_from)s::timestamptz + random() * (%(ended_to)s::timestamptz - %(ended_from)s::timestamptz)
                       AS ended_at
            FROM generate_series(1, %(count)s) g, people, departments
        )
        INSERT INTO patients_encounter (uuid, created_at, updated_at, source_system, external_id, kind, status,
            encounter_number, doctor_name, ward, bed, started_at, ended_at, chief_complaint, department_id,
            doctor_id, patient_id)
        SELECT gen_random_uuid(), now(), now(), %(source)s, %(prefix)s || g, 'inpatient', 'finished',
               'ZY' || %(prefix)s || g, '', '', '', ended_at - (3 + floor(random() * 12)) * interval '1 day', ended_at,
               '', department_id, NULL, patient_id
        FROM stays
        """,
        {
            "count": count,
            "prefix": prefix,
            "source": SOURCE_SYSTEM,
            "ended_from": ended_from,
            "ended_to": ended_to,
        },
    )


def _discharges_clear() -> None:
    """A previous run's discharges and their tasks, so that every run makes the same tasks from scratch."""
    _execute(
        """
        DELETE FROM followups_followuptask t USING patients_encounter e
        WHERE t.source_kind = 'encounter' AND t.source_id = e.id AND e.source_system = %s
        """,
        [SOURCE_SYSTEM],
    )
    _execute("DELETE FROM patients_encounter WHERE source_system = %s", [SOURCE_SYSTEM])


def _expected_new(plan, since: dt.datetime) -> int:
    """Tasks the sweep owes: one per offset of every finished discharge since `since` of a living patient."""
    eligible = _scalar(
        """
        SELECT count(*) FROM patients_encounter e JOIN patients_patient p ON p.id = e.patient_id
        WHERE e.kind = 'inpatient' AND e.status = 'finished' AND e.ended_at >= %s
          AND p.merged_into_id IS NULL AND NOT p.is_deceased
        """,
        [since],
    )
    made = _scalar(
        """
        SELECT count(*) FROM followups_followuptask t JOIN patients_encounter e ON e.id = t.source_id
        WHERE t.plan_id = %s AND t.source_kind = 'encounter' AND e.ended_at >= %s
        """,
        [plan.pk, since],
    )
    return eligible * len(OFFSETS) - made


def _other_active_plans(plan) -> int:
    from followups.models import FollowUpPlan

    return FollowUpPlan.objects.filter(active=True).exclude(pk=plan.pk).count()


def _generation(report: Report, plan, *, discharges: int) -> None:
    from django.utils import timezone

    from followups.models import FollowUpTask
    from followups.services import followups_sweep, tasks_for_encounter
    from patients.models import Encounter

    _discharges_clear()
    now = timezone.now()
    since = now - dt.timedelta(days=DISCHARGE_DAYS, hours=1)
    started = time.perf_counter()
    _discharges_insert(discharges, prefix="S", ended_from=now - dt.timedelta(days=DISCHARGE_DAYS), ended_to=now)
    insert_seconds = time.perf_counter() - started
    _analyze("patients_encounter", "followups_followuptask")
    expected = _expected_new(plan, since)
    others = _other_active_plans(plan)

    before = FollowUpTask.objects.count()
    started = time.perf_counter()
    created = followups_sweep(since=since)
    sweep_seconds = time.perf_counter() - started
    written = FollowUpTask.objects.count() - before
    assert written == created, (written, created)
    if not others:
        assert created == expected, (created, expected)

    started = time.perf_counter()
    again = followups_sweep(since=since)
    rerun_seconds = time.perf_counter() - started
    assert again == 0, again
    assert FollowUpTask.objects.count() == before + created

    # The trigger path: each discharge on its own, as an HL7 A03 or a FHIR Encounter delivers it.
    _discharges_insert(TRIGGER_SAMPLE, prefix="T", ended_from=now - dt.timedelta(hours=6), ended_to=now)
    singles = list(Encounter.objects.filter(source_system=SOURCE_SYSTEM, external_id__startswith="T").order_by("pk"))
    made: list[int] = []
    first = time_each("trigger", singles, lambda encounter: made.append(tasks_for_encounter(encounter=encounter)), 0)
    repeated: list[int] = []
    second = time_each(
        "re-trigger", singles, lambda encounter: repeated.append(tasks_for_encounter(encounter=encounter)), 0
    )
    assert sum(repeated) == 0, sum(repeated)
    _analyze("followups_followuptask")

    rows = [
        [
            f"`followups_sweep()` over {discharges:,} discharges of the last {DISCHARGE_DAYS} days",
            f"{created:,}",
            f"{sweep_seconds:,.1f} s",
            f"**{created / sweep_seconds:,.0f} tasks/s**",
        ],
        ["the same sweep again", f"{again:,}", f"{rerun_seconds:,.1f} s", "—"],
        [
            f"`tasks_for_encounter()` one discharge at a time, {len(singles):,} discharges",
            f"{sum(made):,}",
            f"{sum(first.samples_ms) / 1000:,.1f} s",
            f"{len(singles) / (sum(first.samples_ms) / 1000):,.0f} discharges/s "
            f"(p50 {ms(first.p50)}, p95 {ms(first.p95)}, p99 {ms(first.p99)})",
        ],
        [
            "the same discharges delivered again",
            f"{sum(repeated):,}",
            f"{sum(second.samples_ms) / 1000:,.1f} s",
            f"p50 {ms(second.p50)}, p95 {ms(second.p95)}",
        ],
    ]
    swept = _scalar("SELECT count(*) FROM patients_encounter WHERE kind = 'inpatient' AND ended_at >= %s", [since])
    lines = [
        f"{discharges:,} finished inpatient stays of living patients, spread over clinical departments and "
        f"discharged over the last {DISCHARGE_DAYS} days, written with one `INSERT … SELECT` in "
        f"{insert_seconds:.1f} s; one active plan (the built-in post-discharge questionnaire by phone, days "
        f"{', '.join(map(str, OFFSETS))}, to the department's nurses)"
        + (f", beside {others} other active plans" if others else "")
        + f". The sweep reads every inpatient stay discharged since its start ({swept - TRIGGER_SAMPLE:,}, the "
        f"seeded ones included) and owed {expected:,} tasks.",
        "",
        *table(["run", "tasks created", "time", "rate"], rows),
        "",
        "The trigger is the call the HL7 A03 handler and the FHIR Encounter import make after writing the "
        "encounter (HL7 parsing and the write itself are not in these figures).",
    ]
    report.section("Follow-up tasks from discharges", lines)


# --- 2. Worklists ---------------------------------------------------------------------------------

# The doctors of the clinical departments (`d` the department, `u` the doctor).
_CLINICAL_DOCTORS = """
    hcrm_department d
    JOIN hcrm_staffdepartment s ON s.department_id = d.id
    JOIN hcrm_user u ON u.id = s.user_id
    JOIN hcrm_user_groups ug ON ug.user_id = u.id
    JOIN auth_group g ON g.id = ug.group_id AND g.name = 'doctor'
    WHERE d.kind = 'clinical' AND d.is_active
"""


def _tasks_fill(plan, total: int) -> int:
    from django.utils import timezone

    """Tasks up to `total`, spread over departments, statuses, due dates, channels and assignees.

    About three quarters lie in the past and are finished (completed, or closed with a reason); the open ones
    are mostly upcoming, some due today, some overdue; a fifth are assigned to a doctor of the department,
    the rest wait in the department's nurses' pool.
    """
    missing = total - _scalar("SELECT count(*) FROM followups_followuptask")
    if missing <= 0:
        return 0
    _execute("DROP TABLE IF EXISTS bench_department_doctors")
    _execute(
        f"""
        CREATE TEMPORARY TABLE bench_department_doctors AS
        SELECT d.id AS department_id, array_agg(u.id ORDER BY u.id) AS doctors
        FROM {_CLINICAL_DOCTORS}
        GROUP BY d.id
        """  # noqa: S608 (a constant fragment)
    )
    first_fill = _scalar("SELECT coalesce(min(source_id), 0) FROM followups_followuptask WHERE source_id < 0")
    return _execute(
        """
        WITH people AS (
            SELECT array_agg(id) AS ids FROM patients_patient WHERE merged_into_id IS NULL
        ), departments AS (
            SELECT array_agg(department_id ORDER BY department_id) AS ids FROM bench_department_doctors
        ), drawn AS (
            SELECT g,
                   people.ids[1 + floor(random() * cardinality(people.ids))::int] AS patient_id,
                   departments.ids[1 + floor(random() * cardinality(departments.ids))::int] AS department_id,
                   random() AS age, random() AS kind, random() AS who, random() AS how
            FROM generate_series(1, %(missing)s) g, people, departments
        ), shaped AS (
            SELECT drawn.*,
                   -- 75%% in the past year, 3%% in the last two weeks, 22%% in the next 90 days
                   CASE WHEN age < 0.75 THEN %(today)s::date - 14 - floor(age / 0.75 * 351)::int
                        WHEN age < 0.78 THEN %(today)s::date - floor((age - 0.75) / 0.03 * 14)::int
                        ELSE %(today)s::date + floor((age - 0.78) / 0.22 * 91)::int END AS due_date,
                   (ARRAY[3, 7, 30, 90])[1 + floor(how * 4)::int] AS offset_days
            FROM drawn
        ), stated AS (
            SELECT shaped.*,
                   CASE WHEN due_date < %(today)s::date - 14 THEN
                            CASE WHEN kind < 0.80 THEN 'completed' WHEN kind < 0.97 THEN 'closed' ELSE 'unreached' END
                        WHEN due_date < %(today)s::date THEN
                            CASE WHEN kind < 0.45 THEN 'completed' WHEN kind < 0.50 THEN 'closed'
                                 WHEN kind < 0.85 THEN 'pending' WHEN kind < 0.95 THEN 'unreached' ELSE 'claimed' END
                        WHEN due_date = %(today)s::date THEN
                            CASE WHEN kind < 0.20 THEN 'completed' WHEN kind < 0.85 THEN 'pending'
                                 WHEN kind < 0.95 THEN 'claimed' ELSE 'in_progress' END
                        ELSE 'pending' END AS status,
                   CASE WHEN how < 0.55 THEN 'phone' WHEN how < 0.85 THEN 'sms'
                        WHEN how < 0.95 THEN 'email' ELSE 'letter' END AS channel
            FROM shaped
        )
        INSERT INTO followups_followuptask (uuid, created_at, updated_at, source_kind, source_id, offset_days,
            due_date, due_at, channel, assignee_role, status, closed_reason, attempts, max_attempts,
            retry_spacing_hours, next_attempt_at, claimed_at, completed_at, closed_at, note, assignee_id,
            claimed_by_id, created_by_id, department_id, patient_id, plan_id, questionnaire_id, response_id)
        SELECT gen_random_uuid(), due_date - offset_days, now(), 'encounter', %(first)s - g, offset_days,
               due_date, (due_date::timestamp AT TIME ZONE %(zone)s), channel,
               CASE WHEN who < 0.2 THEN '' ELSE 'nurse' END,
               status,
               CASE WHEN status = 'closed' THEN
                   (ARRAY['max_attempts', 'refused', 'wrong_number', 'readmitted', 'cancelled'])[1 + floor(kind * 5)::int]
                   ELSE '' END,
               CASE WHEN status IN ('completed', 'unreached') THEN 1 ELSE 0 END, 3, 24,
               CASE WHEN status = 'unreached' THEN (due_date::timestamp AT TIME ZONE %(zone)s) + interval '1 day' END,
               CASE WHEN status IN ('claimed', 'in_progress') THEN now() END,
               CASE WHEN status = 'completed' THEN (due_date::timestamp AT TIME ZONE %(zone)s) + interval '10 hours' END,
               CASE WHEN status = 'closed' THEN (due_date::timestamp AT TIME ZONE %(zone)s) + interval '2 days' END,
               '',
               CASE WHEN who < 0.2 THEN doctors[1 + floor(who / 0.2 * cardinality(doctors))::int] END,
               CASE WHEN status IN ('claimed', 'in_progress') THEN doctors[1] END,
               NULL, stated.department_id, patient_id, %(plan)s, %(questionnaire)s, NULL
        FROM stated JOIN bench_department_doctors USING (department_id)
        """,
        {
            "missing": missing,
            "first": first_fill,
            "zone": settings.TIME_ZONE,
            "today": timezone.localdate(),
            "plan": plan.pk,
            "questionnaire": plan.questionnaire_id,
        },
    )


def _pages(plan) -> list[tuple[str, str, str]]:
    """(who, what, URL) of the worklist pages staff open most."""
    from hcrm.models import Department

    other = Department.objects.filter(kind="clinical", is_active=True).exclude(code="NK").order_by("code").first()
    return [
        ("nurse (NK)", "mine, due today", "/followups/"),
        ("nurse (NK)", "mine, overdue", "/followups/?when=overdue"),
        ("nurse (NK)", "mine, upcoming", "/followups/?when=upcoming"),
        ("nurse (NK)", "mine, due today by SMS", "/followups/?when=today&channel=sms"),
        ("nurse (NK)", "mine, overdue by phone", "/followups/?when=overdue&channel=phone"),
        ("nurse (NK)", "mine, upcoming, page 2", "/followups/?when=upcoming&page=2"),
        ("nurse (NK)", "mine, upcoming, page 50 (the last)", "/followups/?when=upcoming&page=50"),
        ("department head (NK)", "mine, due today", "/followups/"),
        ("department head (NK)", "department, due today", "/followups/department/"),
        ("department head (NK)", "department, overdue", "/followups/department/?when=overdue"),
        ("department head (NK)", "department, upcoming by letter", "/followups/department/?when=upcoming&channel=letter"),
        ("department head (NK)", "department, upcoming, page 2", "/followups/department/?when=upcoming&page=2"),
        ("department head (NK)", "department, overdue, page 10", "/followups/department/?when=overdue&page=10"),
        ("administrator", "mine, due today", "/followups/"),
        ("administrator", f"department {other.code}, overdue", f"/followups/department/?department={other.code}&when=overdue"),
        ("administrator", f"department {other.code}, upcoming", f"/followups/department/?department={other.code}&when=upcoming"),
    ]  # fmt: skip


def _request(client: Client, path: str) -> tuple[float, int, float, str]:
    """(milliseconds, queries, slowest query's milliseconds, its SQL) of one GET that must answer 200."""
    # The connection keeps its last 9,000 statements; past that, counting by its length would give 0.
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    if not queries.captured_queries:
        return elapsed, 0, 0.0, ""
    slowest = max(queries.captured_queries, key=lambda query: float(query["time"]))
    return elapsed, len(queries), float(slowest["time"]) * 1000, slowest["sql"]


def _explain(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}")
        return [row[0] for row in cursor.fetchall()]


def _measure(client: Client, path: str, label: str) -> tuple[Timing, str, tuple[float, int, float, str]]:
    """Timings of `path`, its query count (a range if it varies) and the slowest statement seen."""
    samples: list[tuple[float, int, float, str]] = []
    timing = time_each(label, range(PAGE_SAMPLES), lambda _i: samples.append(_request(client, path)))
    counts = sorted({sample[1] for sample in samples})
    queries = f"{counts[0]}–{counts[-1]}" if len(counts) > 1 else str(counts[0])
    return timing, queries, max(samples[5:], key=lambda sample: sample[2])


def _clients() -> dict[str, Client]:
    from hcrm.models import User

    clients = {}
    for who, username in (("nurse (NK)", "nurse"), ("department head (NK)", "head"), ("administrator", "admin")):
        client = Client()
        client.force_login(User.objects.get(username=username))
        clients[who] = client
    return clients


def _worklists(report: Report, plan, *, total: int) -> None:
    started = time.perf_counter()
    filled = _tasks_fill(plan, total)
    fill_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _analyze("followups_followuptask")
    analyze_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM followups_followuptask GROUP BY status ORDER BY count(*) DESC")
        statuses = cursor.fetchall()
    in_database = sum(count for _status, count in statuses)

    clients = _clients()
    rows, slowest = [], []
    timings = []
    for who, what, path in _pages(plan):
        client = clients[who]
        timing, queries, worst_query = _measure(client, path, what)
        timings.append(timing)
        slowest.append((worst_query[2], f"{who}: {what}", worst_query[3]))
        rows.append([who, what, f"`{path}`", ms(timing.p50), ms(timing.p95), ms(timing.p99), queries])
    overall = Timing("all", [sample for timing in timings for sample in timing.samples_ms])
    written = (
        f"{filled:,} written for this section with one `INSERT … SELECT` in {fill_seconds:.1f} s"
        if filled
        else "those beyond the discharges' written by an earlier run"
    )
    lines = [
        f"{in_database:,} follow-up tasks in the database ({written}, `VACUUM ANALYZE` {analyze_seconds:.1f} s): "
        + ", ".join(f"{status} {count:,}" for status, count in statuses)
        + ". Due dates over the past year and the next 90 days, four channels, every clinical department; a "
        "fifth assigned to a doctor, the rest in the department's nurses' pool.",
        "",
        f"Each page rendered {PAGE_SAMPLES} times (after 5 warm-ups) by Django's test client in process, signed in "
        "as the demo hospital's staff: counts per due bucket and channel, a page of 100 tasks, the audit entry.",
        "",
        *table(["who", "worklist", "request", "p50", "p95", "p99", "queries"], rows),
        "",
        f"All pages together: p50 {ms(overall.p50)}, p95 {ms(overall.p95)}, p99 {ms(overall.p99)}.",
    ]
    slowest.sort(reverse=True)
    for milliseconds, label, sql in slowest[:2]:
        lines += [
            "",
            f"Slowest statement of “{label}” ({ms(milliseconds)}), explained:",
            "",
            "```",
            *_explain(sql),
            "```",
        ]
    report.section("Follow-up worklists", lines)


# --- 3. Satisfaction dashboard --------------------------------------------------------------------


def _responses_fill(total: int) -> int:
    """Completed responses to the built-in outpatient satisfaction survey up to `total`, answers and scores
    in the shape `response_save` stores them: choice answers as option codes, the rated department's code
    and the doctor's username in the hidden items, one score per domain, the overall mean and the 0–10
    recommendation with their bands."""
    from followups.builtin import outpatient_satisfaction
    from followups.models import Questionnaire

    questionnaire = Questionnaire.objects.select_related("current_version").get(code=outpatient_satisfaction.CODE)
    version = questionnaire.current_version
    missing = total - _scalar(
        "SELECT count(*) FROM followups_questionnaireresponse WHERE version_id = %s AND status = 'completed'",
        [version.pk],
    )
    if missing <= 0:
        return 0
    domains = outpatient_satisfaction.DOMAINS
    items = [link_id for _zh, _en, link_ids in domains.values() for link_id in link_ids]
    # One mood per patient, each item near it: answers to one response agree with each other, as they do.
    item_values = ",\n".join(
        f"least(5, greatest(1, mood + (ARRAY[-1, 0, 0, 0, 1])[1 + floor(random() * 5)::int]))::int AS {link_id}"
        for link_id in items
        if link_id != "pharm_decoction"
    )

    def mean(link_ids: list[str]) -> str:
        present = ["pharm_decoction_value" if link_id == "pharm_decoction" else link_id for link_id in link_ids]
        total_sql = " + ".join(f"coalesce({name}, 0)" for name in present)
        count_sql = " + ".join(f"({name} IS NOT NULL)::int" for name in present)
        return f"round(({total_sql})::numeric / nullif({count_sql}, 0), 2)"

    def mean_score(link_ids: list[str]) -> str:
        value = mean(link_ids)
        present = ["pharm_decoction_value" if link_id == "pharm_decoction" else link_id for link_id in link_ids]
        raw = " + ".join(f"coalesce({name}, 0)" for name in present)
        count = " + ".join(f"({name} IS NOT NULL)::int" for name in present)
        return (
            f"CASE WHEN ({count}) = 0 THEN NULL ELSE jsonb_build_object("
            f"'value', {value}, 'raw', ({raw})::numeric, 'answered', {count}, "
            f"'band', CASE WHEN {value} >= 4 THEN '满意' WHEN {value} >= 3 THEN '一般' ELSE '不满意' END, "
            f"'band_en', CASE WHEN {value} >= 4 THEN 'Satisfied' WHEN {value} >= 3 THEN 'Neutral' ELSE 'Dissatisfied' END, "
            f"'flag', CASE WHEN {value} >= 3 THEN '' ELSE 'alert' END) END"
        )

    scores = ", ".join(
        [f"'satisfaction', {mean_score(items)}"]
        + [f"'{code}', {mean_score(link_ids)}" for code, (_zh, _en, link_ids) in domains.items()]
        + [
            "'recommend', jsonb_build_object('value', recommend, 'raw', recommend, 'answered', 1, "
            "'band', CASE WHEN recommend >= 9 THEN '推荐者' WHEN recommend >= 7 THEN '被动者' ELSE '贬损者' END, "
            "'band_en', CASE WHEN recommend >= 9 THEN 'Promoter' WHEN recommend >= 7 THEN 'Passive' ELSE 'Detractor' END, "
            "'flag', CASE WHEN recommend >= 7 THEN '' ELSE 'warning' END)"
        ]
    )
    # The statistics columns `response_save` fills for a completed satisfaction survey: the overall mean,
    # the recommendation and the score of each answered item (an option's score is its code here).
    overall = mean(items)
    item_scores = ", ".join(
        f"'{link_id}', {'pharm_decoction_value' if link_id == 'pharm_decoction' else link_id}::float"
        for link_id in items
    )
    answers = ", ".join(
        ["'department', department_code", "'doctor', doctor_username"]
        + [f"'{link_id}', {link_id}::text" for link_id in items if link_id != "pharm_decoction"]
        + ["'used_decoction', used_decoction", "'recommend', recommend::text"]
    )
    sql = f"""
        WITH people AS (
            SELECT array_agg(id) AS ids FROM patients_patient WHERE merged_into_id IS NULL
        ), doctors AS (
            SELECT array_agg(d.code ORDER BY u.id) AS departments, array_agg(u.username ORDER BY u.id) AS usernames,
                   array_agg(d.id ORDER BY u.id) AS department_ids, array_agg(u.id ORDER BY u.id) AS doctor_ids
            FROM {_CLINICAL_DOCTORS}
        ), drawn AS (
            SELECT g,
                   people.ids[1 + floor(random() * cardinality(people.ids))::int] AS patient_id,
                   1 + floor(random() * cardinality(doctors.usernames))::int AS doctor_index,
                   (ARRAY[5, 5, 5, 4, 4, 4, 4, 3, 3, 2])[1 + floor(random() * 10)::int] AS mood,
                   random() < 0.35 AS used_decoction,
                   random() AS moment, random() AS how, random() AS remark,
                   doctors.departments, doctors.usernames, doctors.department_ids, doctors.doctor_ids
            FROM generate_series(1, %(missing)s) g, people, doctors
        ), answered AS (
            SELECT g, patient_id, moment, how, remark, used_decoction, mood,
                   departments[doctor_index] AS department_code, usernames[doctor_index] AS doctor_username,
                   department_ids[doctor_index] AS department_id, doctor_ids[doctor_index] AS doctor_id,
                   {item_values},
                   CASE WHEN used_decoction THEN least(5, greatest(1, mood + (ARRAY[-1, 0, 0, 1])[1 + floor(random() * 4)::int]))::int END
                       AS pharm_decoction_value
            FROM drawn
        ), scored AS (
            SELECT answered.*,
                   least(10, greatest(0, mood * 2 + (ARRAY[-2, -1, -1, 0, 0, 0, 1])[1 + floor(random() * 7)::int]))::int
                       AS recommend,
                   now() - moment * interval '365 days' AS completed_at
            FROM answered
        )
        INSERT INTO followups_questionnaireresponse (uuid, created_at, updated_at, status, answers, scores, source,
            completed_at, answered_by_id, patient_id, version_id, satisfaction, recommendation, item_scores,
            department_id, doctor_id)
        SELECT gen_random_uuid(), completed_at - interval '3 minutes', completed_at, 'completed',
               jsonb_build_object({answers})
                   || CASE WHEN used_decoction THEN jsonb_build_object('pharm_decoction', pharm_decoction_value::text)
                           ELSE '{{}}'::jsonb END
                   || CASE WHEN remark < 0.08 THEN jsonb_build_object('comments',
                           (ARRAY['候诊时间太长，希望改进。', '医生很耐心，谢谢！', '代煎的药送得很及时。',
                                  '挂号流程有点复杂。', '环境干净整洁。'])[1 + floor(remark / 0.08 * 5)::int])
                           ELSE '{{}}'::jsonb END,
               jsonb_strip_nulls(jsonb_build_object({scores})),
               CASE WHEN how < 0.6 THEN 'sms' WHEN how < 0.9 THEN 'phone' ELSE 'email' END,
               completed_at, NULL, patient_id, %(version)s,
               {overall}, recommend,
               jsonb_strip_nulls(jsonb_build_object({item_scores})),
               department_id, doctor_id
        FROM scored
        -- Responses arrive over time: the table holds them in the order they were completed.
        ORDER BY completed_at
    """  # noqa: S608 (item codes and SQL fragments are built from the built-in definition, not input)
    return _execute(sql, {"missing": missing, "version": version.pk})


def _responses_check(sample: int = 200) -> None:
    """Sampled responses of the survey checked and scored again in Python: what the fill wrote (answers,
    scores and the statistics columns) is what `response_save` would have stored."""
    from followups.builtin import outpatient_satisfaction
    from followups.models import Questionnaire, QuestionnaireResponse
    from followups.scoring import satisfaction_figures, scores_compute
    from followups.services.responses import answers_for

    version = (
        Questionnaire.objects.select_related("current_version").get(code=outpatient_satisfaction.CODE).current_version
    )
    for response in QuestionnaireResponse.objects.filter(version=version).order_by("?")[:sample]:
        assert answers_for(version.items, response.answers, complete=True) == response.answers, response.answers
        assert scores_compute(version.items, version.scoring, response.answers) == response.scores, response.scores
        figures = satisfaction_figures(version.items, version.scoring, response.answers, response.scores)
        stored = {field: getattr(response, field) for field in figures}
        assert figures == stored, (figures, stored)
        assert response.department.code == response.answers["department"], response.department_id
        assert response.doctor.username == response.answers["doctor"], response.doctor_id


def _dashboard_paths(questionnaire) -> list[tuple[str, str]] | None:
    from django.urls import NoReverseMatch, reverse
    from django.utils import timezone

    from hcrm.models import Department

    try:
        satisfaction = reverse("analytics:satisfaction")
        kpis = reverse("analytics:followup-kpis")
    except NoReverseMatch:
        return None
    today = timezone.localdate()
    nk = Department.objects.get(code="NK").pk
    quarter = f"from={today - dt.timedelta(days=90)}&to={today}"
    year = f"from={today - dt.timedelta(days=365)}&to={today}"
    return [
        ("satisfaction, no filter", satisfaction),
        ("satisfaction, last 90 days", f"{satisfaction}?{quarter}"),
        ("satisfaction, a year, one department", f"{satisfaction}?{year}&department={nk}"),
        ("satisfaction, a year, the questionnaire", f"{satisfaction}?{year}&questionnaire={questionnaire}"),
        ("follow-up KPIs, no filter", kpis),
        ("follow-up KPIs, last 90 days", f"{kpis}?{quarter}"),
        ("follow-up KPIs, a year, one department", f"{kpis}?{year}&department={nk}"),
    ]


def _satisfaction(report: Report, *, total: int) -> None:
    from followups.builtin import outpatient_satisfaction
    from followups.models import Questionnaire

    started = time.perf_counter()
    filled = _responses_fill(total)
    fill_seconds = time.perf_counter() - started
    _analyze("followups_questionnaireresponse")
    _responses_check()
    in_database = _scalar("SELECT count(*) FROM followups_questionnaireresponse WHERE status = 'completed'")
    written = (
        f"{filled:,} to the built-in outpatient satisfaction survey written for this section with one "
        f"`INSERT … SELECT` in {fill_seconds:.1f} s"
        if filled
        else "the built-in outpatient satisfaction survey's written by an earlier run"
    )
    lines = [
        f"{in_database:,} completed questionnaire responses in the database ({written}: answers and scores in the "
        "stored shape, over the last year, every clinical department and doctor; 200 sampled responses checked "
        "and scored again by `answers_for` and `scores_compute` come out identical).",
        "",
    ]
    # The dashboard's filters take the department's and the questionnaire's ids.
    paths = _dashboard_paths(Questionnaire.objects.get(code=outpatient_satisfaction.CODE).pk)
    if paths is None:
        lines.append("Satisfaction dashboard not available in this build (`analytics:satisfaction` does not resolve).")
        report.section("Satisfaction dashboard", lines)
        return
    clients = _clients()
    rows = []
    for cached in (False, True):
        # Without the cache every request aggregates again; with it (as deployed) repeats reuse the figures.
        with override_settings(ANALYTICS_CACHE_SECONDS=300 if cached else 0):
            for who in ("administrator", "department head (NK)"):
                client = clients[who]
                for what, path in paths:
                    label = f"{what}{', cached' if cached else ''}"
                    try:
                        timing, queries, _slowest = _measure(client, path, label)
                    except AssertionError as error:
                        rows.append([who, label, f"`{path}`", f"answered {error.args[0][1]}", "", "", ""])
                        continue
                    rows.append([who, label, f"`{path}`", ms(timing.p50), ms(timing.p95), ms(timing.p99), queries])
    lines += [
        f"Each page rendered {PAGE_SAMPLES} times (after 5 warm-ups) by Django's test client in process: first "
        "with the figures computed on every request (`ANALYTICS_CACHE_SECONDS=0`), then as deployed, where the "
        "same filters reuse the figures for 5 minutes.",
        "",
        *table(["who", "page", "request", "p50", "p95", "p99", "queries"], rows),
    ]
    report.section("Satisfaction dashboard", lines)
