"""Fixtures for the HL7 v2 pipeline tests: the shared samples (caches are cleared for every test in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path("/work/shared/samples/hl7")


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()
