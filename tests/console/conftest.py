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


@pytest.fixture(autouse=True)
def notifications_outlive_a_slow_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests read the notifications the app shows (`app._notifications`); Textual drops each after 5 s, and on a
    loaded machine a test's presses take longer than that, so a notification said early was gone when the test
    looked (test_read_only_refuses_drain_scale_and_holds saw 2 refusals of 3 at load 10). Kept for the test."""
    from console.app import LoadmasterApp

    monkeypatch.setattr(LoadmasterApp, "NOTIFICATION_TIMEOUT", 600.0)
