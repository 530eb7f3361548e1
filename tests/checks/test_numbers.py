"""Whole numbers in user text: ASCII digits only, and no number too long for Python to
convert ever reaches int() (whose refusal would tell users to call a Python function)."""

from __future__ import annotations

import copy
import pickle

import pytest
import yaml

from checks import numbers
from checks.annotations import judge, values
from checks.annotations_idle import _int as idle_int
from checks.collect.sysctls import _parse as parse_sysctls
from checks.ladder import _parsed as nginx_value
from checks.servers.nginx import parse_time

LONG = "9" * 5000
LONG_SHOWN = "99999999999999999999\u2026 (5,000 digits)"


@pytest.mark.parametrize(
    ("text", "signed", "expected"),
    [
        ("30", False, 30),
        ("007", False, 7),
        ("+30", True, 30),
        ("-30", True, -30),
        ("-30", False, None),
        ("\uff11", False, None),  # fullwidth 1
        ("\u0663\u0660", False, None),  # Arabic-Indic 30, which int() reads
        ("\u00b2", False, None),  # superscript 2: isdigit() is true, int() refuses it
        (" 30", False, None),
        ("30\n", False, None),
        ("", False, None),
        ("0" * 5000 + "7", False, 7),
    ],
)
def test_whole_reads_only_ascii_digits(text: str, signed: bool, expected: int | None) -> None:
    assert numbers.whole(text, signed=signed) == expected


def test_a_number_too_long_to_convert_compares_beyond_every_range_and_prints_as_written() -> None:
    number = numbers.whole(LONG)
    assert number is not None and number > 2**63 and not 1 <= number <= 4000
    assert min(max(number, 1), 4000) == 4000
    assert str(number) == f"{number}" == LONG_SHOWN
    negative = numbers.whole("-" + LONG, signed=True)
    assert negative is not None and negative < -(2**63)
    assert str(negative) == "-9999999999999999999\u2026 (5,000 digits)"
    assert str(copy.deepcopy(number)) == str(pickle.loads(pickle.dumps(number))) == LONG_SHOWN


def test_json_and_yaml_readers_refuse_a_number_too_long_to_convert() -> None:
    with pytest.raises(numbers.NumberTooLong) as caught:
        numbers.loads_json('{"a": [1, ' + LONG + "]}")
    assert str(caught.value) == (
        f"the number {LONG_SHOWN} is longer than any field takes (at most 20 digits)"
    )
    with pytest.raises(numbers.YamlNumberTooLong) as refused:
        numbers.load_yaml("a: 1\nb: " + LONG + "\n")
    assert isinstance(refused.value, yaml.YAMLError)
    assert refused.value.problem_mark is not None and refused.value.problem_mark.line == 1
    # Quoted, it is a string; hexadecimal converts without a limit; short numbers are kept.
    assert numbers.load_yaml(f"a: '{LONG}'\nb: 0x{'f' * 30}\nc: 1_000\n")["c"] == 1000


def test_user_text_with_long_or_foreign_digits_is_read_without_an_error() -> None:
    assert values.parse_int(LONG) == numbers.BEYOND
    assert values.parse_int("\u0663\u0660") is None  # Go's strconv reads ASCII digits only
    assert judge._seconds(f'"{LONG}s"') == numbers.BEYOND
    assert idle_int(f"'{LONG}'") == numbers.BEYOND
    assert idle_int("\u00b2") is None
    assert parse_time(LONG + "s") == float(numbers.BEYOND)
    assert nginx_value("\u00b2", "ConfigMap x").seconds is None
    assert parse_sysctls(f"{LONG}\n75\n9\n") == {
        "net.ipv4.tcp_keepalive_time": numbers.BEYOND,
        "net.ipv4.tcp_keepalive_intvl": 75,
        "net.ipv4.tcp_keepalive_probes": 9,
    }


def test_json_annotation_value_with_a_long_number_is_reported_in_words() -> None:
    error = values.json_error('{"Type": "fixed-response", "StatusCode": ' + LONG + "}")
    assert error is not None
    assert LONG_SHOWN in error and "set_int_max_str_digits" not in error
