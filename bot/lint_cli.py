"""`eks504 lint PATH...`: read manifests, judge them offline, print findings for a CI run.

Reads files, folders (``*.yaml``, ``*.yml``, ``*.json``, recursively) and ``-`` for stdin;
multi-document YAML, ``kubectl get -o yaml`` Lists, ``helm template`` output and scenario
files. Only regular files are opened (a named pipe or a device is refused unread), and no
input is read beyond :data:`MAX_INPUT_BYTES`; stdin is decoded as strictly as a file. Every
object keeps the line it starts on, so each finding points at its file and line. Exit 0
when clean, 1 with findings, 2 when an input cannot be read (see
:func:`checks.lint.read_yaml` for what YAML is refused), holds an object the API server
would reject, or holds no Kubernetes object at all (a mistyped path in CI must not pass).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.output import write_report
from checks import numbers
from checks.lint import (
    MAX_DEPTH,
    Document,
    LintNote,
    LintResult,
    YamlDocument,
    YamlRefused,
    is_kubernetes,
    is_scenario,
    lint_worlds,
    read_yaml_documents,
)

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
# More than any manifest folder needs; /dev/zero piped in stops here, not at the memory's end.
MAX_INPUT_BYTES = 64 * 1024 * 1024
_SPECIAL_FILES = (
    (stat.S_ISFIFO, "named pipe"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISDIR, "folder"),
)


class UnreadableInput(Exception):
    """An input that cannot be read or parsed; ``str()`` says which file and line."""


def parse_yaml(text: str, source: str) -> list[YamlDocument]:
    """Each document of ``text`` with the start line of each of its mappings."""
    try:
        return read_yaml_documents(text)
    except YamlRefused as exc:
        where = f"{source}:{exc.line}" if exc.line else source
        raise UnreadableInput(f"{where}: {exc.reason}") from exc


def _depth_exceeds(obj: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return False


def parse_json(text: str, source: str) -> list[YamlDocument]:
    too_deep = (
        f"{source}: nested too deeply (more than {MAX_DEPTH} levels; "
        "no Kubernetes object needs that many)"
    )
    try:
        obj = numbers.loads_json(text)
    except RecursionError as exc:
        raise UnreadableInput(too_deep) from exc
    except numbers.NumberTooLong as exc:
        line = text.count("\n", 0, max(text.find(exc.written), 0)) + 1
        raise UnreadableInput(f"{source}:{line}: {exc}; check the value") from exc
    except ValueError as exc:
        line = getattr(exc, "lineno", 0)
        raise UnreadableInput(f"{source}:{line}: not valid JSON ({exc})") from exc
    if _depth_exceeds(obj, MAX_DEPTH):
        raise UnreadableInput(too_deep)
    # Limitation: JSON objects all point at line 1; YAML inputs carry exact lines.
    return [YamlDocument(obj, {id(obj): 1})]


@dataclass
class FileDocuments:
    """What one file holds: its plain manifests, each scenario mapping's objects apart (a
    scenario is a cluster of its own), the line of every mapping, and invalid notes on
    documents that could not be judged (a key given twice)."""

    manifests: list[Document]
    scenarios: list[list[Document]]
    lines: dict[int, int]
    notes: list[LintNote]


def documents_of(text: str, source: str) -> FileDocuments:
    parsed = parse_json(text, source) if source.endswith(".json") else parse_yaml(text, source)
    docs: list[Document] = []
    scenarios: list[list[Document]] = []
    all_lines: dict[int, int] = {}
    notes: list[LintNote] = []
    for document in parsed:
        obj, lines = document.obj, document.lines
        all_lines.update(lines)
        if document.duplicates:
            notes.extend(
                LintNote(source, d.line, f"{d.reason}; the document was not judged", invalid=True)
                for d in document.duplicates
            )
            continue
        if obj is None:
            continue  # an empty document, as helm template leaves between sources
        unpacked = _unpack(obj, lines, source, lines.get(id(obj), 1))
        if is_scenario(obj):
            scenarios.append(unpacked)
        else:
            docs.extend(unpacked)
    return FileDocuments(docs, scenarios, all_lines, notes)


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


def files_of(raw: str) -> list[Path | str]:
    """The files one argument names: a folder's, recursively in sorted order; ``-`` as is."""
    if raw == STDIN:
        return [STDIN]
    if not raw.strip():
        # Path("") is the current folder: an empty CI variable must not lint whatever is there.
        raise UnreadableInput(
            "an empty path was given; name a file or a folder (. for the current one), "
            "or - to read standard input"
        )
    path = Path(raw)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    return [path]


def gather(paths: list[str]) -> list[Path | str]:
    """Files to read, folders expanded in sorted order; ``-`` stays as is."""
    return [item for raw in paths for item in files_of(raw)]


def _not_utf8(source: str, exc: UnicodeDecodeError) -> UnreadableInput:
    byte = exc.object[exc.start : exc.start + 1].hex()
    return UnreadableInput(
        f"{source}: cannot read (not UTF-8 text: byte 0x{byte} at offset {exc.start}); "
        "save it as UTF-8"
    )


def _stdin_bytes(stdin: TextIO) -> bytes:
    """What standard input holds, as bytes: undecoded from the binary buffer when there is
    one, so that a byte that is not UTF-8 is reported like one in a file."""
    binary = getattr(stdin, "buffer", None)
    if binary is not None:
        data: bytes = binary.read(MAX_INPUT_BYTES + 1)
        return data
    text = stdin.read(MAX_INPUT_BYTES + 1)
    # A text stream carries the bytes it could not decode as lone surrogates (Python's
    # surrogateescape): turned back into those bytes, they fail to decode below.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _file_bytes(path: Path, source: str) -> bytes:
    """The bytes of a regular file; anything else is refused before a byte is read (a named
    pipe would block, a device never end)."""
    # Non-blocking, so that opening a named pipe nobody writes to returns at once.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            kind = next(
                (name for test, name in _SPECIAL_FILES if test(status.st_mode)), "special file"
            )
            raise UnreadableInput(
                f"{source}: cannot read (a {kind}, not a regular file); give manifest files "
                "or folders, or - to read standard input"
            )
        if status.st_size > MAX_INPUT_BYTES:
            raise _too_large(source)
        data: bytes = handle.read(MAX_INPUT_BYTES + 1)
        return data


def _too_large(source: str) -> UnreadableInput:
    return UnreadableInput(
        f"{source}: cannot read (larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB); "
        "split the manifests into smaller files"
    )


def _read_text(item: Path | str, stdin: TextIO | None) -> str:
    source = "<stdin>" if item == STDIN else str(item)
    try:
        if item != STDIN:
            data = _file_bytes(Path(item), source)
        elif stdin is None:
            raise UnreadableInput(f"{source}: cannot read (standard input is closed)")
        else:
            data = _stdin_bytes(stdin)
    except OSError as exc:
        raise UnreadableInput(f"{source}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > MAX_INPUT_BYTES:
        raise _too_large(source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(source, exc) from exc


@dataclass
class Inputs:
    """What the arguments hold: the worlds to judge (all plain manifests together first,
    then each scenario), the inputs that could not be used, the line of each mapping, and
    invalid notes on documents that could not be judged."""

    worlds: list[list[Document]]
    errors: list[str]
    lines: dict[int, int]
    notes: list[LintNote] = field(default_factory=list)


def read_inputs(paths: list[str], stdin: TextIO | None) -> Inputs:
    docs: list[Document] = []
    scenarios: list[list[Document]] = []
    errors: list[str] = []
    lines: dict[int, int] = {}
    notes: list[LintNote] = []
    for raw in paths:
        try:
            files = files_of(raw)
        except UnreadableInput as exc:
            errors.append(str(exc))
            continue
        found = failed = 0
        for item in files:
            try:
                held = documents_of(
                    _read_text(item, stdin), "<stdin>" if item == STDIN else str(item)
                )
            except UnreadableInput as exc:
                errors.append(str(exc))
                failed += 1
                continue
            docs.extend(held.manifests)
            scenarios.extend(held.scenarios)
            lines.update(held.lines)
            notes.extend(held.notes)
            found += len(held.notes) + sum(
                1
                for d in [*held.manifests, *(d for w in held.scenarios for d in w)]
                if is_kubernetes(d[2])
            )
        if found or failed:
            continue
        shown = "<stdin>" if raw == STDIN else raw
        if not files:
            why = "it holds no .yaml, .yml or .json file"
        else:
            why = f"{len(files)} file(s) read, none with an object that has apiVersion and kind"
        errors.append(f"no Kubernetes objects found in {shown} ({why}); check the path")
    return Inputs([docs, *scenarios], errors, lines, notes)


def read_all(paths: list[str], stdin: TextIO | None) -> tuple[list[list[Document]], list[str]]:
    """The worlds to judge and the inputs that could not be used (see :class:`Inputs`)."""
    inputs = read_inputs(paths, stdin)
    return inputs.worlds, inputs.errors


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
        level = "error" if note.invalid else "notice"
        title = ",title=invalid object" if note.invalid else ""
        out.append(
            f"::{level} file={_github_escape(note.source, True)},line={note.line}{title}::"
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
    return f"{note.source}:{note.line}: {'invalid' if note.invalid else 'note'}: {note.message}"


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
    invalid = sum(1 for n in result.notes if n.invalid)
    out.append(
        f"{len(result.findings)} finding(s): {fails} failing, {warns} warning"
        + (f"; {invalid} invalid object(s)" if invalid else "")
        + (f"; {len(errors)} input(s) could not be used" if errors else "")
    )
    return "\n".join(out) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "github": render_github}


def run(
    paths: list[str], fmt: str, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """Lint ``paths`` and write the report in ``fmt`` (text, json or github); raises
    :class:`~bot.output.OutputError` when ``stdout`` refuses it."""
    stdin = stdin or sys.stdin
    if fmt not in RENDERERS:
        write_report(f"eks504 lint: unknown format {fmt!r} (text, json or github)\n", stdout)
        return EXIT_ERROR
    inputs = read_inputs(paths, stdin)
    result = lint_worlds(inputs.worlds, inputs.lines)
    result.notes[:0] = inputs.notes
    write_report(RENDERERS[fmt](result, inputs.errors), stdout)
    if inputs.errors or any(n.invalid for n in result.notes):
        return EXIT_ERROR
    return EXIT_FINDINGS if result.findings else EXIT_OK
