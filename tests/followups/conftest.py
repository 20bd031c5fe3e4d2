"""Follow-up test fixtures: the FHIR clients of the facade's tests, the research cohorts' segment."""

import pytest

from tests.factories import SegmentFactory
from tests.integrations.fhir.conftest import emr, fhir, reader  # noqa: F401  (fixtures)


@pytest.fixture
def women(db):
    """A segment of the female patients: the audience of the research cohorts' tests."""
    return SegmentFactory(name="女性", filters={"sexes": ["female"]})
