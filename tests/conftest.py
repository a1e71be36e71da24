"""Shared fixtures."""

from __future__ import annotations

import pytest
from fakes import FakeSession


@pytest.fixture
def fake_session() -> FakeSession:
    return FakeSession()
