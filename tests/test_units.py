"""Quantities: every format reads back exactly, and every bad input says what would be valid."""

from __future__ import annotations

import math
import tomllib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.units import (
    MAX_AMOUNT,
    UnitError,
    format_cpu,
    format_size,
    human_cpu,
    human_size,
    literal,
    parse_cpu,
    parse_duration,
    parse_quantity,
    parse_size,
)

amounts = st.integers(min_value=0, max_value=MAX_AMOUNT)


@given(amounts)
def test_cpu_round_trips_through_its_format(millicores: int) -> None:
    assert parse_cpu(format_cpu(millicores)) == millicores


@given(amounts)
def test_size_round_trips_through_its_format(size: int) -> None:
    assert parse_size(format_size(size)) == size


@given(st.integers(min_value=0, max_value=10**12))
def test_cpu_given_as_cores_is_exact(millicores: int) -> None:
    # A TOML float such as 0.1 is not exactly 1/10; it must still mean 100 millicores.
    assert parse_cpu(millicores / 1000) == millicores
    assert parse_cpu(f"{millicores}m") == millicores


@given(st.integers(min_value=0, max_value=1000), st.sampled_from(["K", "M", "G", "T"]))
def test_binary_and_decimal_units(n: int, prefix: str) -> None:
    power = "KMGT".index(prefix) + 1
    assert parse_size(f"{n}{prefix}iB") == n * 1024**power
    assert parse_size(f"{n}{prefix}i") == n * 1024**power
    assert parse_size(f"{n}{prefix}B") == n * 1000**power
    assert parse_size(f"{n}{prefix}") == n * 1000**power
    assert parse_size(f"{n}{prefix.lower()}ib") == n * 1024**power


@given(st.integers(min_value=0, max_value=10**9))
def test_durations_read_back(n: int) -> None:
    assert parse_duration(f"{n}ms") == n / 1000
    assert parse_duration(f"{n}s") == parse_duration(n) == n
    assert parse_duration(f"{n}m") == n * 60
    assert parse_duration(f"{n}h") == n * 3600


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0.5, 500),
        (2, 2000),
        ("2", 2000),
        ("0.25", 250),
        ("500m", 500),
        (" 1.5 ", 1500),
        (0.1, 100),
        (1e-3, 1),
        (1e3, 1_000_000),
    ],
)
def test_cpu_examples(text: object, expected: int) -> None:
    assert parse_cpu(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512MiB", 512 * 2**20),
        ("2GiB", 2 * 2**30),
        ("1.5G", 1_500_000_000),
        ("1.5GiB", 3 * 2**29),
        ("1 GiB", 2**30),
        ("100", 100),
        (4096, 4096),
        ("0.5KiB", 512),
    ],
)
def test_size_examples(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("value", "parse", "says"),
    [
        ("12XB", parse_size, 'unknown unit "XB"'),
        ("lots", parse_size, "is not a size"),
        ("-5MiB", parse_size, "is negative"),
        (-5, parse_size, "is negative"),
        (1.5, parse_size, "give a unit as a string"),
        ("0.1KiB", parse_size, "whole number of bytes"),
        ("1" + "0" * 400 + "PiB", parse_size, "larger than any machine"),
        (True, parse_size, "is not a size"),
        ([1], parse_size, "is not a size"),
        ("1.5m", parse_cpu, "finer than a millicore"),
        (0.0001, parse_cpu, "finer than a millicore"),
        ("500M", parse_cpu, "is not a cpu amount"),
        (-1, parse_cpu, "is negative"),
        ("-1", parse_cpu, "is negative"),
        (math.inf, parse_cpu, "is not a cpu amount"),
        (math.nan, parse_cpu, "is not a cpu amount"),
        (False, parse_cpu, "is not a cpu amount"),
        ("5x", parse_duration, 'unknown unit "x"'),
        (-1, parse_duration, "is negative"),
        (math.inf, parse_duration, "is not a duration"),
        ("9" * 400, parse_duration, "too long"),
        (10**400, parse_duration, "too long"),
        ({}, parse_duration, "is not a duration"),
        (-1, parse_quantity, "is negative"),
        (1.5, parse_quantity, "whole number of units"),
        (2**60, parse_quantity, "larger than any machine"),
    ],
)
def test_bad_quantities_say_what_is_valid(value: object, parse, says: str) -> None:
    with pytest.raises(UnitError) as err:
        parse(value)
    message = str(err.value)
    assert says in message
    assert literal(value)[:20] in message  # the bad value, quoted as written


@given(st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.integers())))
def test_parsers_raise_only_unit_errors(value: object) -> None:
    for parse in (parse_cpu, parse_size, parse_duration, parse_quantity):
        try:
            result = parse(value)
        except UnitError:
            continue
        assert result >= 0


def test_literal_writes_toml() -> None:
    value = {"a": 'x"y', "b": [1, 2.5, True], "c": {}, "d e": {"é": -1}}
    assert tomllib.loads(f"v = {literal(value)}")["v"] == value
    assert literal("12XB") == '"12XB"'
    assert literal(False) == "false"


def test_human_labels() -> None:
    assert human_size(512) == "512B"
    assert human_size(1536 * 2**20) == "1.5GiB"
    assert human_size(200 * 2**30) == "200GiB"
    assert human_cpu(3500) == "3.5"


def test_millicores_are_shown_exactly() -> None:
    """250m once showed as `0.2` and 750m as `0.8` (issue 12 item 11)."""
    assert [human_cpu(m) for m in (250, 750, 125, 1, 1800, 4000, 0, -500)] == [
        "0.25",
        "0.75",
        "0.125",
        "0.001",
        "1.8",
        "4.0",
        "0.0",
        "-0.5",
    ]


toml_values = st.recursive(
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(st.characters(blacklist_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@example({"\x7f": "\x00\x1f\x7f", "0\n": 1})
@given(toml_values)
def test_literal_reads_back_as_the_same_value(value: object) -> None:
    assert tomllib.loads(f"v = {literal(value)}")["v"] == value
