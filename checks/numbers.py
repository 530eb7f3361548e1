"""Whole numbers in text that users write: annotation values, ConfigMap keys, server
configuration, command output, scenario files and the manifests themselves.

Two traps of Python's own conversions are kept out here, once for every caller:

- ``int()`` and ``str.isdigit()`` accept more than ASCII digits (``int("٣٠")`` is 30, and
  ``"²".isdigit()`` is true although ``int("²")`` fails), where Go's ``strconv``, nginx and
  the kernel read only ``0-9``. :func:`whole` reads only those.
- Python refuses to convert a number of more than 4,300 digits (a ValueError that tells
  the user to call ``sys.set_int_max_str_digits()``). No setting eks504 reads needs more
  than :data:`LONGEST` digits, so a longer number is never converted: :func:`whole` reads
  it as a :class:`LongNumber`, which compares as ``±BEYOND`` (beyond every range a value
  is held against, so it is judged out of range) and prints as it was written, shortened,
  in every message that repeats it. The JSON and YAML readers below refuse such a number
  where a parser would have built it.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import yaml

logger = logging.getLogger(__name__)

# Digits converted at most; the largest 64-bit integer has 19.
LONGEST = 20
# What a longer number reads as (with its sign): beyond every range.
BEYOND: int = 10**LONGEST
# How much of a long number a message repeats.
SHOWN_DIGITS = 20

_WHOLE = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"[+-]?[0-9]+")
_DIGIT_RUN = re.compile(r"[0-9]+")


def long_number(written: str) -> str:
    """A number too long to repeat, as a message says it: its start and its length."""
    text = written.strip()
    digits = sum(1 for char in text if "0" <= char <= "9")
    return f"{text[:SHOWN_DIGITS]}\u2026 ({digits:,} digits)"


class LongNumber(int):
    """A number of more than :data:`LONGEST` digits, never converted: it compares and
    computes as ``BEYOND`` (``-BEYOND`` when negative) and prints as :func:`long_number`."""

    written: str

    def __new__(cls, written: str) -> LongNumber:
        number = super().__new__(cls, -BEYOND if written.lstrip().startswith("-") else BEYOND)
        number.written = written
        return number

    def __getnewargs__(self) -> tuple[str]:  # type: ignore[override]
        return (self.written,)

    def __str__(self) -> str:
        return long_number(self.written)

    def __repr__(self) -> str:
        return long_number(self.written)

    def __format__(self, spec: str) -> str:
        try:
            return format(str(self), spec)
        except ValueError:  # a numeric format such as ",d": the number it compares as
            return int.__format__(self, spec)


def whole(text: str, *, signed: bool = False) -> int | None:
    """``text`` as a whole number: ASCII digits only (after one ``+`` or ``-`` when
    ``signed``), no spaces; None for anything else. Beyond :data:`LONGEST` digits (leading
    zeros aside) the result is a :class:`LongNumber`."""
    if not (_SIGNED if signed else _WHOLE).fullmatch(text):
        return None
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > LONGEST:
        return LongNumber(text)
    return -int(digits) if text.startswith("-") else int(digits)


def too_long(written: str) -> str:
    """Why a number of more than :data:`LONGEST` digits cannot be used."""
    return (
        f"the number {long_number(written)} is longer than any field takes "
        f"(at most {LONGEST} digits)"
    )


class NumberTooLong(ValueError):
    """A number in JSON text longer than :data:`LONGEST` digits; ``written`` is its text."""

    def __init__(self, written: str) -> None:
        super().__init__(too_long(written))
        self.written = written


def _json_int(text: str) -> int:
    if len(text.lstrip("-").lstrip("0")) > LONGEST:
        raise NumberTooLong(text)
    return int(text)


def loads_json(text: str) -> Any:
    """``json.loads``, refusing with :class:`NumberTooLong` (a ValueError, like every other
    reason JSON text is refused) a number longer than :data:`LONGEST` digits."""
    return json.loads(text, parse_int=_json_int)


class YamlNumberTooLong(yaml.constructor.ConstructorError):
    """A YAML integer longer than :data:`LONGEST` digits; ``problem`` says so in words."""


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing with :class:`YamlNumberTooLong` (at the number's
    line) an integer longer than :data:`LONGEST` digits instead of converting it."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> Any:
        text = str(node.value).replace("_", "")
        unsigned = text.lstrip("+-")
        # Binary and hexadecimal convert without a limit; decimal, octal and YAML 1.1's
        # base 60 (1:30) go through int() one run of digits at a time.
        if not unsigned.startswith(("0b", "0x")):
            longest = max((len(run) for run in _DIGIT_RUN.findall(unsigned)), default=0)
            if longest > LONGEST:
                raise YamlNumberTooLong(None, None, too_long(text), node.start_mark)
        return super().construct_yaml_int(node)


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with :class:`BoundedLoader` (the refusal is a ``yaml.YAMLError``)."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
