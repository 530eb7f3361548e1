"""`eks504 lint PATH...`: read manifests, judge them offline, print findings for a CI run.

Reads files, folders (``*.yaml``, ``*.yml``, ``*.json``, recursively) and ``-`` for stdin;
multi-document YAML, ``kubectl get -o yaml`` Lists, ``helm template`` output and scenario
files. Every object keeps the line it starts on, so each finding points at its file and
line. Exit 0 when clean, 1 with findings, 2 when an input cannot be read.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from checks.lint import Document, LintNote, LintResult, is_scenario, lint_worlds

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"


class UnreadableInput(Exception):
    """An input that cannot be read or parsed; ``str()`` says which file and line."""


def _lines_of(node: yaml.Node, obj: Any, lines: dict[int, int]) -> None:
    """Record the start line of every mapping in ``obj``, walking its node in step."""
    if isinstance(node, yaml.MappingNode) and isinstance(obj, dict):
        lines[id(obj)] = node.start_mark.line + 1
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value in obj:
                _lines_of(value_node, obj[key_node.value], lines)
    elif isinstance(node, yaml.SequenceNode) and isinstance(obj, list):
        for item_node, item in zip(node.value, obj, strict=False):
            _lines_of(item_node, item, lines)


def parse_yaml(text: str, source: str) -> list[tuple[Any, dict[int, int]]]:
    """Each document of ``text`` with the start line of each of its mappings."""
    loader = yaml.SafeLoader(text)
    documents: list[tuple[Any, dict[int, int]]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            obj = loader.construct_document(node)
            lines: dict[int, int] = {}
            _lines_of(node, obj, lines)
            lines.setdefault(id(obj), node.start_mark.line + 1)
            documents.append((obj, lines))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise UnreadableInput(f"{where}: not valid YAML ({problem})") from exc
    finally:
        loader.dispose()
    return documents


def parse_json(text: str, source: str) -> list[tuple[Any, dict[int, int]]]:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", 0)
        raise UnreadableInput(f"{source}:{line}: not valid JSON ({exc})") from exc
    # Limitation: JSON objects all point at line 1; YAML inputs carry exact lines.
    return [(obj, {id(obj): 1})]


def documents_of(text: str, source: str) -> tuple[list[Document], list[list[Document]]]:
    """(manifests, scenarios): a file's plain manifests, and each scenario mapping's
    objects apart, since a scenario is a cluster of its own."""
    parsed = parse_json(text, source) if source.endswith(".json") else parse_yaml(text, source)
    docs: list[Document] = []
    scenarios: list[list[Document]] = []
    for obj, lines in parsed:
        if obj is None:
            continue  # an empty document, as helm template leaves between sources
        unpacked = _unpack(obj, lines, source, lines.get(id(obj), 1))
        if is_scenario(obj):
            scenarios.append(unpacked)
        else:
            docs.extend(unpacked)
    return docs, scenarios


def _unpack(obj: Any, lines: dict[int, int], source: str, line: int) -> list[Document]:
    """Lists and scenario files become their objects, each at its own line."""
    if isinstance(obj, dict):
        items = None
        if str(obj.get("kind", "")).endswith("List") and isinstance(obj.get("items"), list):
            items = obj["items"]
        elif not obj.get("kind") and isinstance(obj.get("cluster"), list):
            items = obj["cluster"]
        if items is not None:
            unpacked: list[Document] = []
            for item in items:
                unpacked.extend(_unpack(item, lines, source, lines.get(id(item), line)))
            return unpacked
        return [(source, line, obj)]
    return [(source, line, {"value": obj})]


def gather(paths: list[str]) -> list[Path | str]:
    """Files to read, folders expanded in sorted order; ``-`` stays as is."""
    found: list[Path | str] = []
    for raw in paths:
        if raw == STDIN:
            found.append(STDIN)
            continue
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES))
        else:
            found.append(path)
    return found


def read_all(paths: list[str], stdin: TextIO) -> tuple[list[list[Document]], list[str]]:
    """The worlds to judge (all plain manifests together first, then each scenario) and
    the inputs that could not be read."""
    docs: list[Document] = []
    scenarios: list[list[Document]] = []
    errors: list[str] = []
    for item in gather(paths):
        source = "<stdin>" if item == STDIN else str(item)
        try:
            if item == STDIN:
                text = stdin.read()
            else:
                assert isinstance(item, Path)
                text = item.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            errors.append(f"{source}: cannot read ({reason})")
            continue
        try:
            manifests, worlds = documents_of(text, source)
        except UnreadableInput as exc:
            errors.append(str(exc))
            continue
        docs.extend(manifests)
        scenarios.extend(worlds)
    return [docs, *scenarios], errors


# ---- output ----------------------------------------------------------------------------


def _github_escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(result: LintResult, errors: list[str]) -> str:
    out: list[str] = []
    for item in result.findings:
        level = "error" if item.finding.status.value == "fail" else "warning"
        message = " ".join([item.finding.summary, *item.finding.evidence])
        out.append(
            f"::{level} file={_github_escape(item.source, True)},line={item.line},"
            f"title={_github_escape(item.finding.code, True)}::{_github_escape(message)}"
        )
    for note in result.notes:
        out.append(
            f"::notice file={_github_escape(note.source, True)},line={note.line}::"
            f"{_github_escape(note.message)}"
        )
    out.extend(f"::error title=unreadable input::{_github_escape(e)}" for e in errors)
    return "\n".join(out) + ("\n" if out else "")


def render_json(result: LintResult, errors: list[str]) -> str:
    data = {
        "findings": [f.to_dict() for f in result.findings],
        "notes": [n.to_dict() for n in result.notes],
        "errors": errors,
    }
    return json.dumps(data, indent=2) + "\n"


def _note_line(note: LintNote) -> str:
    return f"{note.source}:{note.line}: note: {note.message}"


def render_text(result: LintResult, errors: list[str]) -> str:
    out: list[str] = []
    for item in result.findings:
        finding = item.finding
        out.append(
            f"{item.source}:{item.line}: {finding.status.value} {finding.code} {finding.resource}"
        )
        out.append(f"  {finding.summary}")
        out.extend(f"  - {line}" for line in finding.evidence)
        for fix in finding.fixes:
            out.append(f"  fix: {fix.title}")
            out.extend(f"    {line}" for line in fix.text.rstrip("\n").splitlines())
    out.extend(_note_line(n) for n in result.notes)
    out.extend(f"error: {e}" for e in errors)
    fails = sum(1 for f in result.findings if f.finding.status.value == "fail")
    warns = len(result.findings) - fails
    out.append(
        f"{len(result.findings)} finding(s): {fails} failing, {warns} warning"
        + (f"; {len(errors)} input(s) unreadable" if errors else "")
    )
    return "\n".join(out) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "github": render_github}


def run(
    paths: list[str], fmt: str, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """Lint ``paths`` and write the report in ``fmt`` (text, json or github)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    if fmt not in RENDERERS:
        stdout.write(f"eks504 lint: unknown format {fmt!r} (text, json or github)\n")
        return EXIT_ERROR
    worlds, errors = read_all(paths, stdin)
    result = lint_worlds(worlds)
    stdout.write(RENDERERS[fmt](result, errors))
    if errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if result.findings else EXIT_OK
