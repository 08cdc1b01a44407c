"""Fixtures for the console tests: the fake engine module, and a pinned time zone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.console import fake_engine

SIZE = (120, 40)


@pytest.fixture(scope="session", autouse=True)
def utc_clock() -> Iterator[None]:
    """Event times render in local time; pin it so screens and snapshots are the same everywhere."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def fake() -> ModuleType:
    return fake_engine
