"""Source profiles are cached per process, and a profile saved in the console is seen at once."""

from __future__ import annotations

import pytest

from integrations import profile_cache
from integrations.fhir.services import source_profile_for as fhir_profile_for
from integrations.hl7v2.sources import source_profile_for as hl7_profile_for
from integrations.models import SourceProfile

pytestmark = pytest.mark.django_db


def test_a_profile_is_read_once_while_fresh(django_assert_num_queries):
    hl7_profile_for(application="HIS", facility="TCMH")
    fhir_profile_for("emr")

    with django_assert_num_queries(0):
        assert hl7_profile_for(application="HIS", facility="TCMH").sender == "HIS^TCMH"
        assert fhir_profile_for("emr").sending_application == "emr"


def test_saving_a_profile_drops_the_cached_one():
    assert "X" not in hl7_profile_for(application="HIS", facility="TCMH").sex_codes
    fhir_profile_for("emr")

    for profile in SourceProfile.objects.all():
        profile.mrn_assigner = "TCMH-MR"
        profile.sex_codes = {**profile.sex_codes, "X": "other"}
        profile.save()

    assert hl7_profile_for(application="HIS", facility="TCMH").sex_codes["X"] == "other"
    assert fhir_profile_for("emr").mrn_assigner == "TCMH-MR"


def test_a_change_made_elsewhere_is_seen_after_the_time_to_live(monkeypatch):
    fhir_profile_for("emr")
    # Another process's edit: no signal reaches this one.
    SourceProfile.objects.filter(sending_application="emr").update(mrn_assigner="EMR-MR")
    assert fhir_profile_for("emr").mrn_assigner == ""

    monkeypatch.setattr(profile_cache, "PROFILE_TTL_SECONDS", 0.0)

    assert fhir_profile_for("emr").mrn_assigner == "EMR-MR"


def test_deleting_a_profile_drops_the_cached_one():
    first = fhir_profile_for("emr")

    first.delete()

    assert fhir_profile_for("emr").pk != first.pk
