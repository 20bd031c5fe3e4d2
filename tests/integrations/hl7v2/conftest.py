"""Fixtures for the HL7 v2 pipeline tests: fresh profile and department caches, the shared samples."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path("/work/shared/samples/hl7")


@pytest.fixture(autouse=True)
def _fresh_pipeline_caches():
    """Profiles and departments are cached per process; a test's rolled-back rows must not outlive it."""
    from integrations.hl7v2.apply import departments_forget
    from integrations.hl7v2.sources import source_profile_cache_clear

    source_profile_cache_clear()
    departments_forget()
    yield
    source_profile_cache_clear()
    departments_forget()


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()
