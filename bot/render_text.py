"""The report for a terminal: verdict first, then each problem with evidence and fixes."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from checks.models import Finding, Report, Rung, Status

_MARK = {Status.FAIL: "FAIL", Status.WARN: "WARN", Status.PASS: "PASS", Status.UNKNOWN: "????"}
_COLOUR = {Status.FAIL: "31", Status.WARN: "33", Status.PASS: "32", Status.UNKNOWN: "36"}


def _use_colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _mark(status: Status, colour: bool) -> str:
    text = f"[{_MARK[status]}]"
    return f"\033[{_COLOUR[status]}m{text}\033[0m" if colour else text


def _finding(f: Finding, colour: bool) -> list[str]:
    lines = [f"{_mark(f.status, colour)} {f.code}: {f.summary}"]
    lines += [f"    - {e}" for e in f.evidence]
    for fx in f.fixes:
        lines.append(f"    fix: {fx.title} ({fx.language})")
        lines += [f"      {line}" for line in fx.text.rstrip().splitlines()]
    return lines


# The layer column is cut here so that the table stays readable in a terminal.
LADDER_LAYER_WIDTH = 64


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:g} s"


def ladder_table(ladder: list[Rung], layer_width: int = LADDER_LAYER_WIDTH) -> list[str]:
    """The timeout ladder as plain-text rows: layer, setting, value, source; each note on
    the line under its row."""
    if not ladder:
        return []
    layers = [
        r.layer if len(r.layer) <= layer_width else r.layer[: layer_width - 1] + "\u2026"
        for r in ladder
    ]
    widths = (
        max(len("layer"), *(len(x) for x in layers)),
        max(len("setting"), *(len(r.setting) for r in ladder)),
        max(len("value"), *(len(_seconds(r.seconds)) for r in ladder)),
    )
    rows = [("layer", "setting", "value", "source")]
    rows += [
        (x, r.setting, _seconds(r.seconds), r.source) for x, r in zip(layers, ladder, strict=True)
    ]
    lines: list[str] = []
    for index, (layer, setting, value, source) in enumerate(rows):
        lines.append(
            f"{layer:<{widths[0]}}  {setting:<{widths[1]}}  {value:>{widths[2]}}  {source}".rstrip()
        )
        note = ladder[index - 1].note if index else ""
        if note:
            lines.append(f"{'':<{widths[0]}}  ^ {note}")
    return lines


def render(
    report: Report, *, cache_hit: bool = False, age_s: float = 0.0, stream: TextIO | None = None
) -> str:
    colour = _use_colour(stream or sys.stdout)
    t = report.target
    lines = [f"eks504 check {t.namespace}/{t.service}: {report.verdict()}"]
    if cache_hit:
        lines.append(f"(cached result, {age_s:.0f} s old; --fresh to check again)")
    for lb in report.load_balancers:
        idle = f", idle timeout {lb.idle_timeout_s} s" if lb.idle_timeout_s is not None else ""
        lines.append(f"  {lb.type} load balancer {lb.name} ({lb.scheme}{idle})")
        lines.append(f"    {lb.dns_name} serves {lb.serves}")
    if report.path:
        lines.append("  path: " + " -> ".join(report.path))
    if report.ladder:
        lines.append("  timeout ladder, outermost first:")
        lines += [f"    {row}" for row in ladder_table(report.ladder)]
    problems = report.problems
    if problems:
        lines.append("")
        for f in problems:
            lines += _finding(f, colour)
            lines.append("")
    unknown = [f for f in report.findings if f.status is Status.UNKNOWN]
    if unknown:
        lines.append("Could not check:")
        for f in unknown:
            lines.append(f"  {_mark(f.status, colour)} {f.code}: {f.summary}")
            lines += [f"      - {e}" for e in f.evidence]
    passed = sorted({f.code for f in report.findings if f.status is Status.PASS})
    if passed:
        lines.append("Passed: " + ", ".join(passed))
    return "\n".join(lines).rstrip() + "\n"


def render_json(report: Report, *, cache_hit: bool = False, age_s: float = 0.0) -> str:
    data: dict[str, Any] = report.to_dict()
    data["cache"] = {"hit": cache_hit, "age_s": round(age_s, 1)}
    return json.dumps(data, indent=2) + "\n"
