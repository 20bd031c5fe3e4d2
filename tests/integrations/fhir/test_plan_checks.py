"""Checks before anything is written: the Bundle's own elements validated once per distinct entry, and
mapped record values checked against the model fields (values found clean remembered)."""

from __future__ import annotations

import datetime as dt

from fhir.resources.R4B import get_fhir_model_class

from integrations.fhir.outcome import model_issues
from integrations.fhir.services import plan as planning
from integrations.fhir.services import records
from integrations.fhir.services.plan import bundle_validate, entry_plan
from patients.models import LabResult


def observation_entry(request: dict | None = None) -> dict:
    return {
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": "Patient/1"},
            "valueString": "6.1",
        },
        "request": request or {"method": "POST", "url": "Observation"},
    }


def validated(bundle: dict):
    entries = {index: entry_plan(index, raw) for index, raw in enumerate(bundle["entry"])}
    return bundle_validate(bundle, entries), entries


def test_alike_entries_are_validated_once_and_pass():
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [observation_entry() for _ in range(12)]}

    own, entries = validated(bundle)

    assert own == []
    assert all(entry.issues == [] for entry in entries.values())


def test_the_bundle_is_checked_with_one_of_each_alike_entry(monkeypatch):
    sizes = []

    def counting(model, data, root):
        if root == "Bundle":
            sizes.append(len(data["entry"]))
        return model_issues(model, data, root)

    monkeypatch.setattr(planning, "model_issues", counting)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [observation_entry() for _ in range(12)]}

    validated(bundle)

    assert sizes == [1]


def test_a_bad_element_repeated_in_alike_entries_is_named_at_every_index():
    bad_request = {"method": "POST", "url": "Observation", "ifMatch": 7}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            observation_entry(),
            observation_entry(bad_request),
            observation_entry(),
            observation_entry(bad_request),
        ],
    }
    whole = model_issues(
        get_fhir_model_class("Bundle"),
        {**bundle, "entry": [{"request": raw["request"]} for raw in bundle["entry"]]},
        "Bundle",
    )

    own, _entries = validated(bundle)

    assert own == whole
    assert [issue.expression for issue in own] == [
        ("Bundle.entry[1].request.ifMatch",),
        ("Bundle.entry[3].request.ifMatch",),
    ]


def test_a_bundle_element_error_is_reported_once_with_alike_entries():
    bundle = {"resourceType": "Bundle", "type": "transaction", "total": "many", "entry": [observation_entry()] * 3}

    own, _entries = validated(bundle)

    assert [issue.expression for issue in own] == [("Bundle.total",)]


def test_entries_that_are_not_json_values_are_validated_as_they_are():
    assert planning._distinct([{"fullUrl": "a"}, {"fullUrl": "a"}]) == [{"fullUrl": "a"}]
    assert planning._distinct([{"fullUrl": "a"}, {"fullUrl": {1, 2}}]) is None
    assert planning._distinct([{"n": 1}, {"n": 1.0}, {"n": True}]) == [{"n": 1}, {"n": 1.0}, {"n": True}]


def lab_values(**changes) -> dict:
    values = {
        "code_system": "loinc",
        "code": "2345-7",
        "name": "Glucose",
        "value": "6.1",
        "value_numeric": 6.1,
        "unit": "mmol/L",
        "observed_at": dt.datetime(2026, 1, 5, 9, 20, tzinfo=dt.UTC),
    }
    return {**values, **changes}


def test_clean_values_are_remembered_and_bad_ones_refused_every_time(monkeypatch):
    monkeypatch.setattr(records, "_CLEAN_VALUES", set())

    assert records._field_errors(LabResult, lab_values()) == {}
    assert (LabResult, "unit", str, "mmol/L") in records._CLEAN_VALUES
    assert not any(key[1] == "observed_at" for key in records._CLEAN_VALUES)

    too_long = "x" * 31
    for _attempt in range(2):
        errors = records._field_errors(LabResult, lab_values(unit=too_long))
        assert list(errors) == ["unit"]
    assert (LabResult, "unit", str, too_long) not in records._CLEAN_VALUES


def test_a_future_time_is_refused_though_other_values_were_seen_before(monkeypatch):
    monkeypatch.setattr(records, "_CLEAN_VALUES", set())
    records._field_errors(LabResult, lab_values())

    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    errors = records._field_errors(LabResult, lab_values(observed_at=future))

    assert list(errors) == ["observed_at"]


def test_the_remembered_values_are_bounded(monkeypatch):
    monkeypatch.setattr(records, "_CLEAN_VALUES", set())
    monkeypatch.setattr(records, "CLEAN_VALUES_KEPT", 2)

    records._field_errors(LabResult, lab_values())

    assert len(records._CLEAN_VALUES) == 2
