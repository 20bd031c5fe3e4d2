"""Follow-up test fixtures: the FHIR clients of the facade's tests."""

from tests.integrations.fhir.conftest import emr, fhir, reader  # noqa: F401  (fixtures)
