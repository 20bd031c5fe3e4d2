"""Follow-up KPIs per department on a small hand-built dataset: coverage, connect, completion, on time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from analytics.selectors import Filters, followup_kpis
from tests.analytics.factories import local
from tests.factories import EncounterFactory, PatientFactory
from tests.followups.factories import task

pytestmark = pytest.mark.django_db

PERIOD = Filters(start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 31), scope=None)
DUE = dt.date(2025, 1, 10)


def _stay(patient, department, ended: dt.date, **fields):
    return EncounterFactory(
        patient=patient,
        department=department,
        kind=fields.pop("kind", "inpatient"),
        started_at=local(ended - dt.timedelta(days=7)),
        ended_at=local(ended),
        **fields,
    )


@pytest.fixture
def dataset(patient, internal_medicine, acupuncture):
    nk, zj = internal_medicine, acupuncture
    other = PatientFactory()
    covered = _stay(patient, nk, dt.date(2025, 1, 5))
    _stay(patient, nk, dt.date(2025, 2, 5))
    _stay(patient, nk, dt.date(2025, 2, 6), status="cancelled")
    _stay(patient, nk, dt.date(2025, 2, 7), kind="outpatient")
    _stay(patient, nk, dt.date(2025, 4, 2))
    covered_elsewhere = _stay(other, zj, dt.date(2025, 3, 1))

    def due(offset: int, **fields):
        return task(patient=patient, department=nk, due_date=DUE, offset_days=offset, **fields)

    done = {"status": "completed", "attempts": 1}
    return {
        "on_due_day": due(1, **done, completed_at=local(DUE, 15), source_kind="encounter", source_id=covered.pk),
        "a_day_late": due(2, **done, completed_at=local(DUE + dt.timedelta(days=1), 23)),
        "two_days_late": due(3, **done, completed_at=local(DUE + dt.timedelta(days=2), 0, 30)),
        "reached": due(4, status="in_progress", attempts=1),
        "refused": due(5, status="closed", closed_reason="refused", attempts=1),
        "never_reached": due(6, status="closed", closed_reason="max_attempts", attempts=3),
        "deceased": due(7, status="closed", closed_reason="deceased", attempts=0),
        "waiting": due(8),
        "link_sent": due(9, status="in_progress", attempts=1, channel="sms"),
        "later": task(patient=patient, department=nk, due_date=dt.date(2025, 4, 1), offset_days=10),
        "elsewhere": task(
            patient=other,
            department=zj,
            due_date=dt.date(2025, 3, 5),
            source_kind="encounter",
            source_id=covered_elsewhere.pk,
        ),
    }


def _rates(kpis) -> tuple:
    return kpis.coverage, kpis.connect_rate, kpis.completion_rate, kpis.on_time_rate


def test_each_kpi_counts_what_its_definition_says(dataset, internal_medicine, settings):
    settings.ANALYTICS_ON_TIME_GRACE_DAYS = 1

    nk = followup_kpis(PERIOD).by_department[internal_medicine.pk]

    # discharges: not the cancelled stay, the outpatient visit or the one after the period
    assert (nk.discharges, nk.covered) == (2, 1)
    # tasks due: not the deceased patient's, nor the one due after the period
    assert (nk.due, nk.tried, nk.connected, nk.completed, nk.on_time) == (8, 7, 5, 3, 2)
    assert _rates(nk) == (Decimal("50.0"), Decimal("71.4"), Decimal("37.5"), Decimal("25.0"))


def test_on_time_is_counted_in_local_days_with_the_grace_days_of_the_settings(dataset, internal_medicine, settings):
    settings.ANALYTICS_ON_TIME_GRACE_DAYS = 0
    no_grace = followup_kpis(PERIOD).by_department[internal_medicine.pk].on_time
    settings.ANALYTICS_ON_TIME_GRACE_DAYS = 2
    two_days = followup_kpis(PERIOD).by_department[internal_medicine.pk].on_time

    # completed at 00:30 two days after (16:30 the day before in UTC) is two local days late
    assert (no_grace, two_days) == (1, 3)


def test_totals_add_up_the_departments_and_a_scope_keeps_to_its_departments(dataset, internal_medicine, acupuncture):
    every = followup_kpis(PERIOD)
    mine = followup_kpis(Filters(PERIOD.start, PERIOD.end, frozenset({acupuncture.pk})))

    zj = every.by_department[acupuncture.pk]
    assert (zj.discharges, zj.covered, zj.due, zj.tried, zj.connect_rate) == (1, 1, 1, 0, None)
    assert (every.total.discharges, every.total.covered, every.total.due) == (3, 2, 9)
    assert (set(mine.by_department), mine.total.due) == ({acupuncture.pk}, 1)


def test_kpis_need_two_queries(dataset, django_assert_num_queries):
    with django_assert_num_queries(2):
        followup_kpis(PERIOD)
