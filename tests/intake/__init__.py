"""Tests of the intake parsers; fixtures are .eml files in tests/fixtures/intake/ written for these tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "intake"
# A fixed "now" so that the fixtures' 2024 dates are in the past and 2099 is in the future.
RECEIVED_AT = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
