"""The FHIR bundle benchmark's own checks: its bundles are accepted whole, and the archive check sees what
is missing or doubled."""

from __future__ import annotations

import uuid

import pytest

from bench.fhir_bundles import archive_check, bundle_mrn, bundle_resource, first_new_bundle
from patients.models import LabResult, Patient

pytestmark = pytest.mark.django_db

ALL_WELL = {
    "patient missing or held twice": 0,
    "encounter missing or held twice": 0,
    "conditions missing, doubled or off their encounter": 0,
    "observations missing, doubled or off their encounter": 0,
}


def test_bench_bundles_are_created_whole_and_the_archive_check_finds_each_exactly_once(emr):
    for index in (0, 1):
        response = emr.post_fhir("/fhir/R4/", bundle_resource(index))
        assert response.status_code == 200, response.content
        statuses = {entry["response"]["status"] for entry in response.json()["entry"]}
        assert statuses == {"201 Created"}

    assert archive_check([0, 1]) == ALL_WELL
    assert first_new_bundle() == 2


def test_archive_check_counts_a_bundle_never_posted_and_a_doubled_observation(emr):
    emr.post_fhir("/fhir/R4/", bundle_resource(5))
    doubled = LabResult.objects.first()
    doubled.pk, doubled.uuid = None, uuid.uuid4()
    doubled.save()

    assert archive_check([5, 6]) == {
        **ALL_WELL,
        "patient missing or held twice": 1,
        "observations missing, doubled or off their encounter": 1,
    }


def test_bundle_numbers_bring_distinct_patients():
    first, second = bundle_resource(0), bundle_resource(1)

    assert bundle_mrn(0) == first["entry"][0]["resource"]["identifier"][0]["value"] == "B010000000"
    assert first["entry"][0]["resource"]["identifier"][1] != second["entry"][0]["resource"]["identifier"][1]
    assert first["entry"][0]["fullUrl"] != second["entry"][0]["fullUrl"]
    assert bundle_resource(0) == first
    assert Patient.objects.count() == 0
