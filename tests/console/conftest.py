"""Fixtures for the console tests: the fake engine (loaded by path, so its module name cannot collide)."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SIZE = (120, 40)


def load_fake_engine() -> ModuleType:
    name = "loadmaster_console_fake_engine"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fake_engine.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


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
    return load_fake_engine()
