"""What the server modules share: the facts about one container, and the result type.

A :class:`ContainerView` flattens what a server's keep-alive setting can come from: the
command line (with ``sh -c`` scripts split into words), literal environment variables
(including those taken from ConfigMaps), the image name, and files mounted from ConfigMaps.
"""

from __future__ import annotations

import math
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Literal

OriginKind = Literal["argv", "shell", "env", "file", "default", "none"]


@dataclass(frozen=True)
class Origin:
    """Where a keep-alive value was read, precisely enough to patch it.

    ``argv``: ``field`` ("command" or "args") and ``index`` of the element holding the value,
    which is ``text`` (``--keep-alive=75`` keeps its flag). ``shell``: the value sits inside a
    ``sh -c`` script at that element. ``env``: the variable ``name``. ``file``: ``path``,
    ``line``, ``configmap`` (``NS/NAME``) and ``key``.
    """

    kind: OriginKind = "none"
    field: str = ""
    index: int = -1
    text: str = ""
    name: str = ""
    path: str = ""
    line: int = 0
    configmap: str = ""
    key: str = ""


@dataclass(frozen=True)
class ServerKeepAlive:
    """How long one container's HTTP server keeps an idle keep-alive connection open."""

    server: str
    container: str
    reuses_connections: bool
    idle_timeout_s: float | None
    source: str
    assumed_default: bool
    note: str = ""
    origin: Origin = field(default_factory=Origin)


@dataclass(frozen=True)
class MountedFile:
    path: str
    text: str
    configmap: str  # "NS/NAME"
    key: str

    def describe(self, line: int = 0) -> str:
        where = f"{self.path} line {line}" if line else self.path
        return f"{where}, ConfigMap {self.configmap}"

    def origin(self, line: int = 0) -> Origin:
        """Where a value read at ``line`` of this file comes from, to patch it there."""
        return Origin(
            kind="file", path=self.path, line=line, configmap=self.configmap, key=self.key
        )


@dataclass(frozen=True)
class Word:
    """One word of the container's command line and where it sits."""

    text: str
    field: str  # "command" or "args"
    index: int
    in_shell: bool = False


_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh"})
_SEPARATORS = frozenset({"&&", "||", ";", "|", "&"})
# Words that start another program rather than being it.
_WRAPPERS = frozenset(
    {
        "exec",
        "env",
        "tini",
        "dumb-init",
        "--",
        "-m",
        "bundle",
        "poetry",
        "pipenv",
        "uv",
        "run",
        "ddtrace-run",
        "opentelemetry-instrument",
        "newrelic-admin",
        "run-program",
        "nice",
    }
)
_PYTHON = re.compile(r"^python[0-9.]*$")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class ContainerView:
    name: str
    namespace: str
    image: str
    words: tuple[Word, ...]
    env: dict[str, str]
    files: tuple[MountedFile, ...]
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str = ""  # the container's workingDir; "" when the image's WORKDIR applies
    # ConfigMaps the container mounts or reads variables from that were not read (refused,
    # or missing): "ConfigMap NS/NAME at PATH" or "ConfigMap NS/NAME (environment)".
    unread: tuple[str, ...] = ()

    @property
    def image_repository(self) -> str:
        """``nginxinc/nginx-unprivileged`` for ``docker.io/nginxinc/nginx-unprivileged:1.27``."""
        ref = self.image.split("@", 1)[0]
        last = ref.rsplit("/", 1)[-1]
        if ":" in last:
            ref = ref[: len(ref) - len(last)] + last.split(":", 1)[0]
        parts = ref.split("/")
        if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
            parts = parts[1:]
        if parts and parts[0] == "library":
            parts = parts[1:]
        return "/".join(parts)

    @property
    def image_basename(self) -> str:
        return self.image_repository.rsplit("/", 1)[-1]

    def segments(self) -> list[list[Word]]:
        """The command line split into simple commands (``a && b`` gives two)."""
        result: list[list[Word]] = [[]]
        for word in self.words:
            if word.in_shell and word.text in _SEPARATORS:
                result.append([])
            else:
                result[-1].append(word)
        return [segment for segment in result if segment]

    def program(self, names: frozenset[str]) -> list[Word] | None:
        """The words after the program when one of the commands runs one of ``names``."""
        for segment in self.segments():
            for position, word in enumerate(segment):
                base = posixpath.basename(word.text)
                if base in names:
                    return segment[position + 1 :]
                if (
                    base in _WRAPPERS
                    or _PYTHON.match(base)
                    or _ENV_ASSIGNMENT.match(word.text)
                    or (word.text.startswith("-") and position > 0)
                ):
                    continue
                break
        return None

    def file(self, path: str) -> MountedFile | None:
        """The mounted file a program opening ``path`` reads; relative paths start at workingDir.

        Without a workingDir the image's WORKDIR applies, which the manifest does not show, so
        a relative path then matches no mounted file.
        """
        if not posixpath.isabs(path):
            if not self.working_dir:
                return None
            path = posixpath.join(self.working_dir, path)
        return next((f for f in self.files if f.path == posixpath.normpath(path)), None)

    def files_under(self, directory: str, suffix: str = "") -> list[MountedFile]:
        prefix = posixpath.normpath(directory).rstrip("/") + "/"
        return [f for f in self.files if f.path.startswith(prefix) and f.path.endswith(suffix)]


def _words(command: list[str], args: list[str]) -> tuple[Word, ...]:
    raw = [Word(str(t), "command", i) for i, t in enumerate(command)]
    raw += [Word(str(t), "args", i) for i, t in enumerate(args)]
    if raw and posixpath.basename(raw[0].text) in _SHELLS:
        for position, word in enumerate(raw[1:-1], start=1):
            if word.text.startswith("-") and "c" in word.text[1:]:
                script = raw[position + 1]
                return tuple(Word(t, script.field, script.index, True) for t in _split(script))
    return tuple(raw)


def _split(script: Word) -> list[str]:
    try:
        lexer = shlex.shlex(script.text, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        return list(lexer)
    except ValueError:
        return script.text.split()


def _mappings(value: object) -> list[dict[str, Any]]:
    """The mappings of a list field; anything else (a live object may hold odd data) is
    left out, so a malformed entry is not read rather than crashing the read."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _configmap_data(configmaps: dict[str, dict[str, Any]], name: object) -> dict[str, Any]:
    return _mapping(_mapping(configmaps.get(str(name))).get("data"))


def _env(container: dict[str, Any], configmaps: dict[str, dict[str, Any]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for source in _mappings(container.get("envFrom")):
        data = _configmap_data(configmaps, _mapping(source.get("configMapRef")).get("name", ""))
        prefix = str(source.get("prefix", ""))
        values.update({f"{prefix}{k}": str(v) for k, v in data.items()})
    for item in _mappings(container.get("env")):
        name = str(item.get("name", ""))
        if "value" in item:
            values[name] = str(item["value"])
            continue
        ref = _mapping(_mapping(item.get("valueFrom")).get("configMapKeyRef"))
        data = _configmap_data(configmaps, ref.get("name", ""))
        if str(ref.get("key", "")) in data:
            values[name] = str(data[str(ref["key"])])
    return values


def _configmap_sources(volume: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(volume.get("configMap"), dict):
        return [volume["configMap"]]
    sources = _mappings(_mapping(volume.get("projected")).get("sources"))
    return [s["configMap"] for s in sources if isinstance(s.get("configMap"), dict)]


def _configmap_mounts(
    container: dict[str, Any], pod: dict[str, Any]
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each volume mount of ``container`` with the ConfigMap sources of its volume."""
    volumes = {str(v.get("name")): v for v in _mappings(_mapping(pod.get("spec")).get("volumes"))}
    return [
        (mount, _configmap_sources(volumes[str(mount.get("name"))]))
        for mount in _mappings(container.get("volumeMounts"))
        if str(mount.get("name")) in volumes
    ]


def _mounted_files(
    container: dict[str, Any], pod: dict[str, Any], configmaps: dict[str, dict[str, Any]]
) -> tuple[MountedFile, ...]:
    namespace = str(_mapping(pod.get("metadata")).get("namespace", ""))
    files: list[MountedFile] = []
    for mount, sources in _configmap_mounts(container, pod):
        mount_path = str(mount.get("mountPath", ""))
        sub_path = str(mount.get("subPath", ""))
        for source in sources:
            cm_name = str(source.get("name", ""))
            data = _configmap_data(configmaps, cm_name)
            if not isinstance(source.get("items") or [], list):
                continue  # which keys it mounts cannot be told
            items = _mappings(source.get("items"))
            paths = (
                {str(i["key"]): str(i.get("path", i["key"])) for i in items if "key" in i}
                if items
                else {str(k): str(k) for k in data}
            )
            for key, rel in paths.items():
                if key not in data:
                    continue
                if sub_path:
                    if rel != sub_path:
                        continue
                    path = mount_path
                else:
                    path = posixpath.join(mount_path, rel)
                files.append(
                    MountedFile(
                        posixpath.normpath(path), str(data[key]), f"{namespace}/{cm_name}", key
                    )
                )
    return tuple(files)


def view(
    container: dict[str, Any], pod: dict[str, Any], configmaps: dict[str, dict[str, Any]]
) -> ContainerView:
    command = [str(t) for t in container.get("command") or []]
    args = [str(t) for t in container.get("args") or []]
    return ContainerView(
        name=str(container.get("name", "")),
        namespace=str((pod.get("metadata") or {}).get("namespace", "")),
        image=str(container.get("image", "")),
        words=_words(command, args),
        env=_env(container, configmaps),
        files=_mounted_files(container, pod, configmaps),
        command=tuple(command),
        args=tuple(args),
        working_dir=str(container.get("workingDir") or ""),
        unread=_unread_configmaps(container, pod, configmaps),
    )


def _unread_configmaps(
    container: dict[str, Any], pod: dict[str, Any], configmaps: dict[str, dict[str, Any]]
) -> tuple[str, ...]:
    namespace = str(_mapping(pod.get("metadata")).get("namespace", ""))
    unread: list[str] = []
    for mount, sources in _configmap_mounts(container, pod):
        for source in sources:
            name = str(source.get("name", ""))
            if name not in configmaps and not source.get("optional"):
                unread.append(f"ConfigMap {namespace}/{name} at {mount.get('mountPath', '')}")
    for source in _mappings(container.get("envFrom")):
        name = str(_mapping(source.get("configMapRef")).get("name", ""))
        if name and name not in configmaps:
            unread.append(f"ConfigMap {namespace}/{name} (environment)")
    return tuple(unread)


@dataclass(frozen=True)
class FlagHit:
    """A flag's value on the command line, and the word holding the value."""

    value: str
    word: Word
    joined: bool  # "--flag=value" or "-kvalue": the value shares the word with the flag


def find_flag(words: list[Word], long: tuple[str, ...], short: str = "") -> FlagHit | None:
    """The last occurrence of a flag wins, as with argparse and click."""
    hit: FlagHit | None = None
    for position, word in enumerate(words):
        text = word.text
        for name in long:
            if text == name and position + 1 < len(words):
                hit = FlagHit(words[position + 1].text, words[position + 1], False)
            elif text.startswith(name + "="):
                hit = FlagHit(text[len(name) + 1 :], word, True)
        if short and text == short and position + 1 < len(words):
            hit = FlagHit(words[position + 1].text, words[position + 1], False)
        elif short and text.startswith(short) and not text.startswith("--") and text != short:
            hit = FlagHit(text[len(short) :], word, True)
    return hit


def flag_origin(hit: FlagHit) -> Origin:
    kind: OriginKind = "shell" if hit.word.in_shell else "argv"
    return Origin(kind=kind, field=hit.word.field, index=hit.word.index, text=hit.word.text)


def parse_seconds(text: str) -> float | None:
    """A plain number of seconds, or None when it is not one."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def seconds_text(value: float) -> str:
    if math.isinf(value):
        return "no limit"
    return f"{value:g} s"
