"""RFM: the scoring rule as a table, the same rule in SQL, and the batch recompute of patient statistics."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from hcrm.celery import app as celery_app
from hcrm.models import AuditEntry
from patients.models import OutreachSettings, PatientStats, RfmGroup
from patients.selectors.outreach import outreach_settings
from patients.selectors.segments import local_midnight
from patients.services.outreach import outreach_settings_update
from patients.services.stats import (
    RfmBoundaries,
    RfmScores,
    patient_stats_recompute,
    rfm_parameters,
    rfm_scores,
    rfm_scores_sql,
)
from patients.tasks.segments import RUN_KEY, patient_stats_recompute_all, patient_stats_recompute_start
from tests.factories import ChargeFactory, EncounterFactory, PatientFactory

TODAY = dt.date(2026, 6, 15)
DEFAULTS = RfmBoundaries(
    recency_days=(30, 90, 180, 365),
    frequency_visits=(2, 3, 5, 8),
    monetary_yuan=(Decimal(500), Decimal(2000), Decimal(5000), Decimal(20000)),
    window_days=730,
)


def _at(days_ago: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    """A moment `days_ago` local days before TODAY."""
    return local_midnight(TODAY - dt.timedelta(days=days_ago)) + dt.timedelta(hours=hour, minutes=minute)


# --- The rule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "visit_count", "visits_in_window", "spending", "expected"),
    [
        (None, 0, 0, "0", (0, 0, 0, "none")),
        (0, 1, 1, "100", (5, 1, 1, "new")),
        (30, 1, 1, "500", (5, 1, 2, "new")),
        (31, 1, 1, "499.99", (4, 1, 1, "new")),
        (90, 1, 1, "0", (4, 1, 1, "new")),
        (91, 1, 1, "0", (3, 1, 1, "active")),
        (45, 2, 2, "0", (4, 2, 1, "active")),
        (10, 8, 8, "20000", (5, 5, 5, "loyal")),
        (100, 5, 5, "5000", (3, 4, 4, "loyal")),
        (100, 4, 4, "4999.99", (3, 3, 3, "active")),
        (200, 3, 3, "2000", (2, 3, 3, "at_risk")),
        (400, 9, 3, "0", (1, 3, 1, "at_risk")),
        (400, 2, 2, "0", (1, 2, 1, "lapsed")),
        (366, 1, 1, "0", (1, 1, 1, "lapsed")),
        (800, 3, 0, "0", (1, 1, 1, "lapsed")),
        (181, 2, 2, "0", (2, 2, 1, "occasional")),
        (365, 1, 1, "19999.99", (2, 1, 4, "occasional")),
    ],
)
def test_rfm_scores_table(days, visit_count, visits_in_window, spending, expected):
    scores = rfm_scores(
        days_since_last_visit=days,
        visit_count=visit_count,
        visits_in_window=visits_in_window,
        spending_in_window=Decimal(spending),
        boundaries=DEFAULTS,
    )

    assert scores == RfmScores(*expected)


def test_rfm_scores_follow_changed_boundaries():
    boundaries = RfmBoundaries((7, 14, 21, 28), (1, 2, 3, 4), (Decimal(1), Decimal(2), Decimal(3), Decimal(4)), 365)

    scores = rfm_scores(
        days_since_last_visit=14,
        visit_count=3,
        visits_in_window=3,
        spending_in_window=Decimal(2),
        boundaries=boundaries,
    )

    assert scores == RfmScores(4, 4, 3, "loyal")


# --- The same rule in SQL -------------------------------------------------------------------------------

GRID_DAYS = [None, 0, 1, 29, 30, 31, 89, 90, 91, 179, 180, 181, 364, 365, 366, 729, 1000]
GRID_VISITS = [(0, 0), (1, 1), (1, 0), (2, 1), (2, 2), (3, 3), (4, 4), (5, 5), (7, 7), (8, 8), (9, 8), (30, 2)]
GRID_SPENDING = ["0", "499.99", "500", "1999.99", "2000", "4999.99", "5000", "19999.99", "20000", "123456.78"]


def _sql_scores(rows: list[tuple]) -> list[tuple]:
    """Score the figures of `rows` with the recompute's SQL fragment, one statement for all of them."""
    cast = "CAST({} AS timestamp with time zone)" if connection.vendor == "postgresql" else "{}"
    selects, params = [], {}
    for index, (last_visit_at, visit_count, visits_in_window, spending) in enumerate(rows):
        selects.append(
            f"SELECT {index} AS n, {cast.format(f'%(last_{index})s')} AS last_visit_at, "
            f"%(count_{index})s AS visit_count, %(window_{index})s AS visits_in_window, "
            f"%(spending_{index})s AS spending_in_window"
        )
        params[f"last_{index}"] = (
            None if last_visit_at is None else connection.ops.adapt_datetimefield_value(last_visit_at)
        )
        params[f"count_{index}"] = visit_count
        params[f"window_{index}"] = visits_in_window
        params[f"spending_{index}"] = float(spending) if connection.vendor == "sqlite" else Decimal(spending)
    sql = rfm_scores_sql(" UNION ALL ".join(selects))
    sql = f"SELECT n, recency_score, frequency_score, monetary_score, rfm_group FROM ({sql}) scored ORDER BY n"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, **rfm_parameters(DEFAULTS, TODAY)})
        return [tuple(row[1:]) for row in cursor.fetchall()]


@pytest.mark.django_db
def test_sql_and_python_agree_on_a_grid_of_figures():
    cases = []
    for days, (visit_count, visits_in_window), spending in itertools.product(GRID_DAYS, GRID_VISITS, GRID_SPENDING):
        if (days is None) != (visit_count == 0):
            continue
        # The day counts, not the hour: the first and the last minute of that local day score alike.
        for hour, minute in ((0, 0), (23, 59)):
            cases.append(
                (days, visit_count, visits_in_window, spending, None if days is None else _at(days, hour, minute))
            )
    expected, computed = [], []
    for chunk_start in range(0, len(cases), 400):  # SQLite caps compound SELECTs at 500
        chunk = cases[chunk_start : chunk_start + 400]
        computed += _sql_scores([(last, count, window, spending) for _d, count, window, spending, last in chunk])
        expected += [
            tuple(
                rfm_scores(
                    days_since_last_visit=days,
                    visit_count=count,
                    visits_in_window=window,
                    spending_in_window=Decimal(spending),
                    boundaries=DEFAULTS,
                )
            )
            for days, count, window, spending, _last in chunk
        ]

    assert len(cases) == 2 * (len(GRID_DAYS) - 1) * (len(GRID_VISITS) - 1) * len(GRID_SPENDING) + 2 * len(GRID_SPENDING)
    assert computed == expected
    assert {row[3] for row in expected} == set(RfmGroup.values)  # every group is exercised


# --- Recompute over real records ----------------------------------------------------------------------------


@pytest.fixture
def records(db):
    """Patients whose figures are known: never seen, new, loyal (with noise that must not count), merged."""
    never = PatientFactory(name="未就诊")
    new = PatientFactory(name="新病人")
    visit = EncounterFactory(patient=new, started_at=_at(10))
    ChargeFactory(patient=new, encounter=visit, amount=Decimal("300.50"), charged_at=_at(10))
    loyal = PatientFactory(name="老病人")
    for days in (5, 40, 70, 100, 200, 800):
        EncounterFactory(patient=loyal, started_at=_at(days))
    first = loyal.encounters.get(started_at=_at(5))
    old = loyal.encounters.get(started_at=_at(800))
    ChargeFactory(patient=loyal, encounter=first, amount=Decimal(1000), charged_at=_at(5))
    ChargeFactory(patient=loyal, encounter=old, amount=Decimal(1500), charged_at=_at(800))
    EncounterFactory(patient=loyal, started_at=_at(3), status="cancelled")
    EncounterFactory(patient=loyal, started_at=_at(-1), status="planned")  # tomorrow: not a visit yet
    ChargeFactory(patient=loyal, encounter=first, amount=Decimal(999), charged_at=_at(-1))
    merged = PatientFactory(name="已合并", merged_into=loyal)
    return {"never": never, "new": new, "loyal": loyal, "merged": merged}


def _stats(patient) -> dict:
    return PatientStats.objects.filter(patient=patient).values(
        "first_visit_at",
        "last_visit_at",
        "visit_count",
        "visits_in_window",
        "spending_total",
        "spending_in_window",
        "recency_score",
        "frequency_score",
        "monetary_score",
        "rfm_group",
    )[0]


def test_recompute_writes_the_figures_of_every_active_patient(records):
    written = patient_stats_recompute(today=TODAY)

    assert written == 3
    assert _stats(records["never"]) == {
        "first_visit_at": None,
        "last_visit_at": None,
        "visit_count": 0,
        "visits_in_window": 0,
        "spending_total": Decimal("0.00"),
        "spending_in_window": Decimal("0.00"),
        "recency_score": 0,
        "frequency_score": 0,
        "monetary_score": 0,
        "rfm_group": "none",
    }
    assert _stats(records["new"]) == {
        "first_visit_at": _at(10),
        "last_visit_at": _at(10),
        "visit_count": 1,
        "visits_in_window": 1,
        "spending_total": Decimal("300.50"),
        "spending_in_window": Decimal("300.50"),
        "recency_score": 5,
        "frequency_score": 1,
        "monetary_score": 1,
        "rfm_group": "new",
    }
    assert _stats(records["loyal"]) == {
        "first_visit_at": _at(800),
        "last_visit_at": _at(5),
        "visit_count": 6,
        "visits_in_window": 5,
        "spending_total": Decimal("2500.00"),
        "spending_in_window": Decimal("1000.00"),
        "recency_score": 5,
        "frequency_score": 4,
        "monetary_score": 2,
        "rfm_group": "loyal",
    }
    assert not PatientStats.objects.filter(patient=records["merged"]).exists()


def test_recompute_agrees_with_the_python_rule(records):
    patient_stats_recompute(today=TODAY)

    for stats in PatientStats.objects.all():
        days = None if stats.last_visit_at is None else (TODAY - timezone.localtime(stats.last_visit_at).date()).days
        expected = rfm_scores(
            days_since_last_visit=days,
            visit_count=stats.visit_count,
            visits_in_window=stats.visits_in_window,
            spending_in_window=stats.spending_in_window,
            boundaries=RfmBoundaries.from_settings(outreach_settings()),
        )
        assert (stats.recency_score, stats.frequency_score, stats.monetary_score, stats.rfm_group) == tuple(expected)


def test_recompute_is_idempotent(records):
    patient_stats_recompute(today=TODAY)
    first = list(PatientStats.objects.order_by("patient_id").values())

    written = patient_stats_recompute(today=TODAY)
    second = list(PatientStats.objects.order_by("patient_id").values())

    assert written == 3
    assert [{k: v for k, v in row.items() if k != "computed_at"} for row in second] == [
        {k: v for k, v in row.items() if k != "computed_at"} for row in first
    ]


def test_batches_by_range_and_by_list_write_what_one_run_writes(records):
    patient_stats_recompute(today=TODAY, batch_size=1)
    whole = {row["patient_id"]: row for row in PatientStats.objects.values()}
    PatientStats.objects.all().delete()

    ids = sorted(whole)
    patient_stats_recompute(today=TODAY, id_range=(ids[0], ids[1]))
    patient_stats_recompute(today=TODAY, patient_ids=[ids[2], records["merged"].pk])
    parts = {row["patient_id"]: row for row in PatientStats.objects.values()}

    strip = lambda rows: {pk: {k: v for k, v in row.items() if k != "computed_at"} for pk, row in rows.items()}  # noqa: E731
    assert strip(parts) == strip(whole)


def test_recompute_updates_a_row_when_visits_change_and_drops_a_merged_patients_row(records):
    patient_stats_recompute(today=TODAY)
    EncounterFactory(patient=records["never"], started_at=_at(1))
    PatientStats.objects.create(patient=records["merged"], computed_at=timezone.now())

    patient_stats_recompute(today=TODAY, patient_ids=[records["never"].pk, records["merged"].pk])

    assert (_stats(records["never"])["visit_count"], _stats(records["never"])["rfm_group"]) == (1, "new")
    assert not PatientStats.objects.filter(patient=records["merged"]).exists()


def test_a_later_today_ages_the_recency(records):
    patient_stats_recompute(today=TODAY + dt.timedelta(days=400))

    # Five visits 405–600 days ago are still in the two-year window: a frequent patient gone quiet.
    assert (_stats(records["loyal"])["recency_score"], _stats(records["loyal"])["rfm_group"]) == (1, "at_risk")
    assert (_stats(records["new"])["recency_score"], _stats(records["new"])["rfm_group"]) == (1, "lapsed")


def test_recompute_uses_the_boundaries_in_the_settings(records, staff):
    outreach_settings_update(actor=staff["administrator"], data={"rfm_frequency_visits": [1, 2, 3, 5]})

    patient_stats_recompute(today=TODAY)

    assert (_stats(records["loyal"])["frequency_score"], _stats(records["new"])["frequency_score"]) == (5, 2)


# --- Tasks -----------------------------------------------------------------------------------------------------


@pytest.fixture
def eager_tasks():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def no_run_claimed():
    from django.core.cache import cache

    cache.delete(RUN_KEY)
    yield
    cache.delete(RUN_KEY)


def test_nightly_task_walks_every_batch_and_releases_its_claim(
    records, eager_tasks, no_run_claimed, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        patient_stats_recompute_all.delay(today=TODAY.isoformat(), batch_size=1)

    # ids: never, new, loyal, merged (one batch each), then the empty batch that finishes the run
    assert len(callbacks) == 4
    assert PatientStats.objects.count() == 3
    assert _stats(records["loyal"])["rfm_group"] == "loyal"
    assert cache.get(RUN_KEY) is None


def test_a_second_run_does_not_start_while_one_is_running(records, no_run_claimed):
    from django.core.cache import cache

    cache.set(RUN_KEY, "another-run", 60)

    assert patient_stats_recompute_start() is False
    assert patient_stats_recompute_all(today=TODAY.isoformat()) == 0
    assert PatientStats.objects.count() == 0


# --- Settings ----------------------------------------------------------------------------------------------------


def _settings_errors(**data) -> dict[str, list[str]]:
    before = list(OutreachSettings.objects.values())
    with pytest.raises(ValidationError) as error:
        outreach_settings_update(actor=None, data=data)
    assert list(OutreachSettings.objects.values()) == before
    return {field: [item.message for item in items] for field, items in error.value.error_dict.items()}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"rfm_recency_days": [30, 90, 180]}, "rfm_recency_days", "Give exactly four numbers."),
        ({"rfm_recency_days": [30, 30, 180, 365]}, "rfm_recency_days", "The boundaries must be strictly increasing."),
        ({"rfm_recency_days": [90, 30, 180, 365]}, "rfm_recency_days", "The boundaries must be strictly increasing."),
        ({"rfm_recency_days": [0, 30, 180, 365]}, "rfm_recency_days", "Each boundary must be a positive number."),
        ({"rfm_frequency_visits": [1.5, 2, 3, 4]}, "rfm_frequency_visits", "Each boundary must be a whole number."),
        ({"rfm_monetary_yuan": ["a", 2, 3, 4]}, "rfm_monetary_yuan", "Give exactly four numbers."),
        ({"rfm_monetary_yuan": [-1, 2, 3, 4]}, "rfm_monetary_yuan", "Each boundary must be a positive number."),
        ({"daily_message_cap": 0}, "daily_message_cap", "Enter a number from 1 to 1000."),
        ({"rfm_window_days": "x"}, "rfm_window_days", "Enter a whole number."),
        ({"quiet_hours_start": "25:00"}, "quiet_hours_start", "Enter a time as HH:MM."),
        (
            {"quiet_hours_start": "21:00", "quiet_hours_end": "21:00"},
            "quiet_hours_end",
            "The end must differ from the start.",
        ),
        ({"sms_sender": "x"}, "sms_sender", "This field cannot be set here."),
    ],
)
def test_settings_validation_names_the_field(data, field, message):
    assert _settings_errors(**data) == {field: [message]}


def test_settings_update_saves_and_is_audited(staff):
    row = outreach_settings_update(
        actor=staff["administrator"],
        data={
            "quiet_hours_start": "22:30",
            "quiet_hours_end": dt.time(7, 0),
            "daily_message_cap": "2",
            "rfm_monetary_yuan": [100, "500.5", 1000, 5000],
        },
    )

    row.refresh_from_db()
    assert (row.quiet_hours_start, row.quiet_hours_end, row.daily_message_cap) == (dt.time(22, 30), dt.time(7), 2)
    assert row.rfm_monetary_yuan == [100, 500.5, 1000, 5000]
    assert row.updated_by == staff["administrator"]
    entry = AuditEntry.objects.filter(content_type__model="outreachsettings").latest("pk")
    assert (entry.event, entry.actor) == ("update", staff["administrator"])
    assert entry.changes_dict["daily_message_cap"] == [3, 2]
