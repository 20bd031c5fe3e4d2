"""Follow-up test fixtures: the FHIR clients of the facade's tests, the research cohorts' segment and the
sample questionnaire."""

import pytest

from followups.services import questionnaire_save, questionnaire_version_save
from tests.factories import SegmentFactory
from tests.followups import samples
from tests.integrations.fhir.conftest import emr, fhir, reader  # noqa: F401  (fixtures)


@pytest.fixture
def women(db):
    """A segment of the female patients: the audience of the research cohorts' tests."""
    return SegmentFactory(name="女性", filters={"sexes": ["female"]})


@pytest.fixture
def questionnaire(db):
    """The sample questionnaire (every item type, branching, a score), active, as the tasks ask it."""
    questionnaire = questionnaire_save(
        actor=None, data={"code": "post-discharge", "title": "出院随访", "purpose": "clinical", "status": "active"}
    )
    questionnaire_version_save(
        actor=None, questionnaire=questionnaire, items=samples.items(), scoring=samples.scoring()
    )
    questionnaire.refresh_from_db()
    return questionnaire
