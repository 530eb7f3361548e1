"""A local Kubernetes API server that serves a scenario's objects over plain HTTP.

The official ``kubernetes`` client works against it unchanged: discovery, list and get with
label and field selectors, create, patch, replace and delete, and pod exec over the
websocket channel protocol (``v4.channel.k8s.io`` and ``v5.channel.k8s.io``). Exec answers
come from the scenario's ``exec`` values: a pod answers from ``NAMESPACE/POD``, a
host-network pod without its own entry from ``node/NODE``, and a pod with neither behaves
like a container with no shell and no ``sysctl``.

The server runs an aiohttp application on its own event loop in a background thread, bound
to 127.0.0.1 on a free port::

    with KubeApiServer(scenario["cluster"], scenario.get("exec") or {}) as server:
        server.write_kubeconfig(path)
        ...
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import logging
import posixpath
import re
import shlex
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import WSCloseCode, web

from checks import numbers

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

SANDBOX_USER = "system:serviceaccount:eks504:eks504"
SANDBOX_TOKEN = "eks504-sandbox-token"
SERVER_VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.4-eks-a737599",
    "gitCommit": "0e2d8d4d2c7e6f0a9c5b8e1f3a7d6c4b2e1f0a9c",
    "gitTreeState": "clean",
    "buildDate": "2024-08-26T21:27:36Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_CHANNEL_PROTOCOLS = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
)
_STDOUT, _STDERR, _ERROR = 1, 2, 3
_SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_EXEC_ID_SEED = "eks504-sandbox-exec"


# ---------------------------------------------------------------------------------------------
# Resource catalogue


@dataclass(frozen=True)
class _Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    # PATCH and PUT on the main resource leave status alone where status is a subresource.
    has_status: bool = False

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The name the API server uses in messages: ``services``, ``deployments.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


_RESOURCES: tuple[_Resource, ...] = (
    _Resource("", "v1", "Namespace", "namespaces", False, ("ns",), ("status",), True),
    _Resource("", "v1", "Node", "nodes", False, ("no",), ("status",), True),
    _Resource("", "v1", "Service", "services", True, ("svc",), ("status",), True),
    _Resource("", "v1", "Pod", "pods", True, ("po",), ("exec", "log", "status"), True),
    _Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _Resource("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    _Resource("", "v1", "Event", "events", True, ("ev",)),
    _Resource("", "v1", "Secret", "secrets", True),
    _Resource("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    _Resource("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("status",), True),
    _Resource("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("status",), True),
    _Resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), True),
    _Resource("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("status",), True),
    _Resource("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), ("status",), True),
    _Resource("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    _Resource("elbv2.k8s.aws", "v1beta1", "IngressClassParams", "ingressclassparams", False),
    _Resource("elbv2.k8s.aws", "v1beta1", "TargetGroupBinding", "targetgroupbindings", True),
    _Resource(
        "vpcresources.k8s.aws", "v1beta1", "SecurityGroupPolicy", "securitygrouppolicies", True
    ),
)
_BY_KIND = {r.kind: r for r in _RESOURCES}
_BY_PATH = {(r.group, r.version, r.plural): r for r in _RESOURCES}
_NAMESPACES = _BY_KIND["Namespace"]
_PODS = _BY_KIND["Pod"]
_NODES = _BY_KIND["Node"]
_SERVICES = _BY_KIND["Service"]
_ENDPOINTS = _BY_KIND["Endpoints"]
_SLICES = _BY_KIND["EndpointSlice"]


def _group_versions() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for res in _RESOURCES:
        if res.group and res.version not in groups.setdefault(res.group, []):
            groups[res.group].append(res.version)
    return groups


# ---------------------------------------------------------------------------------------------
# Errors as the API server reports them


class _ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(res: _Resource, name: str | None) -> Obj:
    details: Obj = {}
    if name:
        details["name"] = name
    if res.group:
        details["group"] = res.group
    details["kind"] = res.plural
    return details


def _not_found(res: _Resource, name: str) -> _ApiError:
    return _ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name))


def _namespace_not_found(namespace: str) -> _ApiError:
    return _not_found(_NAMESPACES, namespace)


def _bad_request(message: str) -> _ApiError:
    return _ApiError(400, "BadRequest", message)


def _invalid(res: _Resource, name: str, message: str) -> _ApiError:
    return _ApiError(
        422, "Invalid", f'{res.kind} "{name}" is invalid: {message}', _details(res, name)
    )


def _page_not_found() -> _ApiError:
    return _ApiError(404, "NotFound", "the server could not find the requested resource", {})


# ---------------------------------------------------------------------------------------------
# Selectors

_SET_TERM = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\((.*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    """Split on commas that are not inside a ``(a,b)`` value set."""
    terms: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [term.strip() for term in terms if term.strip()]


# A parsed selector term: key or field path, operator, values.
_Requirement = tuple[str, str, frozenset[str]]


def _parse_labels(text: str) -> list[_Requirement]:
    requirements: list[_Requirement] = []
    for term in _split_selector(text):
        set_term = _SET_TERM.match(term)
        if set_term:
            key, operator, raw = set_term.groups()
            values = frozenset(v.strip() for v in raw.split(",") if v.strip())
            requirements.append((key, operator, values))
        elif "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            requirements.append((key, "!=", frozenset([value])))
        elif "=" in term:
            key, value = (part.strip() for part in term.replace("==", "=").split("=", 1))
            requirements.append((key, "=", frozenset([value])))
        elif re.fullmatch(r"!\s*[A-Za-z0-9._/-]+", term):
            requirements.append((term[1:].strip(), "!", frozenset()))
        elif re.fullmatch(r"[A-Za-z0-9._/-]+", term):
            requirements.append((term, "exists", frozenset()))
        else:
            raise _bad_request(f"unable to parse requirement: invalid label selector: {term!r}")
    return requirements


def _parse_fields(text: str) -> list[_Requirement]:
    requirements: list[_Requirement] = []
    for term in _split_selector(text):
        if "!=" in term:
            path, value = (part.strip() for part in term.split("!=", 1))
            requirements.append((path, "!=", frozenset([value])))
        elif "=" in term:
            path, value = (part.strip() for part in term.replace("==", "=").split("=", 1))
            requirements.append((path, "=", frozenset([value])))
        else:
            raise _bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
    return requirements


def _satisfied(requirement: _Requirement, value: str | None) -> bool:
    """Whether one term holds; ``value`` is None where the label is absent."""
    _, operator, values = requirement
    if operator == "exists":
        return value is not None
    if operator == "!":
        return value is None
    if operator in ("in", "="):
        return value in values
    return value not in values  # "notin" and "!=" also hold for an absent label


def _labels_match(requirements: list[_Requirement], labels: dict[str, str]) -> bool:
    return all(_satisfied(r, labels.get(r[0])) for r in requirements)


def _fields_match(requirements: list[_Requirement], obj: Obj) -> bool:
    return all(_satisfied(r, _field_value(obj, r[0])) for r in requirements)


def _field_value(obj: Obj, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _labels_of(obj: Obj) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


# ---------------------------------------------------------------------------------------------
# Patches

# Lists the API server merges element by element under strategic merge, and the key it uses.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}


class _PatchError(ValueError):
    pass


def _merge_key(field: str, items: list[Any]) -> str | None:
    if not all(isinstance(item, dict) for item in items):
        return None
    if field == "ports":
        # Container ports merge on containerPort, Service ports on port.
        return "containerPort" if any("containerPort" in item for item in items) else "port"
    return _MERGE_KEYS.get(field)


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(item) for item in value]
    return value


def _strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return _strip_directives(copy.deepcopy(patch))
    if patch.get("$patch") == "replace":
        return _strip_directives(copy.deepcopy(patch))
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        if isinstance(value, list):
            merge_key = _merge_key(key, value)
            if merge_key and isinstance(current, list):
                result[key] = _merge_list(current, value, merge_key)
            else:
                result[key] = [
                    _strip_directives(copy.deepcopy(item))
                    for item in value
                    if not (isinstance(item, dict) and item.get("$patch") == "delete")
                ]
        elif isinstance(value, dict):
            result[key] = _strategic_merge(current, value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_list(current: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(copy.deepcopy(i)) for i in patch if i.get("$patch") is None]
    result = copy.deepcopy(current)
    for item in patch:
        index = next(
            (
                i
                for i, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(merge_key) == item.get(merge_key)
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is not None:
            result[index] = _strategic_merge(result[index], item)
        else:
            result.append(_strip_directives(copy.deepcopy(item)))
    return result


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise _PatchError(f"invalid JSON pointer {path!r}")
    if not path:
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _list_index(container: list[Any], token: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit():
        raise _PatchError(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) if for_add else len(container) - 1
    if index > limit:
        raise _PatchError(f"array index {index} out of bounds")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_list_index(node, token, for_add=False)]
        else:
            raise _PatchError(f"doc is missing path: /{'/'.join(tokens)}")
    return node


def _pointer_get(doc: Any, path: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    if isinstance(parent, dict) and tokens[-1] in parent:
        return parent[tokens[-1]]
    if isinstance(parent, list):
        return parent[_list_index(parent, tokens[-1], for_add=False)]
    raise _PatchError(f"doc is missing path: {path}")


def _pointer_add(doc: Any, path: Any, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, tokens[-1], for_add=True), value)
    else:
        raise _PatchError(f"doc is missing path: {path}")
    return doc


def _pointer_remove(doc: Any, path: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise _PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    if isinstance(parent, dict) and tokens[-1] in parent:
        return parent.pop(tokens[-1])
    if isinstance(parent, list):
        return parent.pop(_list_index(parent, tokens[-1], for_add=False))
    raise _PatchError(f"unable to remove nonexistent key: {tokens[-1]}")


def _json_patch(target: Obj, operations: Any) -> Any:
    """RFC 6902 JSON patch."""
    if not isinstance(operations, list):
        raise _PatchError("json patch must be an array of operations")
    doc: Any = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict):
            raise _PatchError("json patch operation must be an object")
        op = operation.get("op")
        path = operation.get("path")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise _PatchError(f"missing value for {op} operation")
        if op == "add":
            doc = _pointer_add(doc, path, copy.deepcopy(operation["value"]))
        elif op == "remove":
            _pointer_remove(doc, path)
        elif op == "replace":
            if _pointer(path):
                _pointer_remove(doc, path)
            doc = _pointer_add(doc, path, copy.deepcopy(operation["value"]))
        elif op == "move":
            value = _pointer_remove(doc, operation.get("from"))
            doc = _pointer_add(doc, path, value)
        elif op == "copy":
            value = copy.deepcopy(_pointer_get(doc, operation.get("from")))
            doc = _pointer_add(doc, path, value)
        elif op == "test":
            if _pointer_get(doc, path) != operation["value"]:
                raise _PatchError(f"testing value {path} failed")
        else:
            raise _PatchError(f"unexpected operation {op!r}")
    return doc


def _apply_patch(content_type: str, target: Obj, patch: Any) -> Any:
    if content_type == "application/json-patch+json":
        return _json_patch(target, patch)
    if content_type == "application/merge-patch+json":
        return _merge_patch(target, patch)
    return _strategic_merge(target, patch)


# ---------------------------------------------------------------------------------------------
# Exec: the few commands a pod's shell answers, from the scenario's values


@dataclass
class _ExecResult:
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    # Set when the runtime could not start the process at all (no such executable).
    start_error: str | None = None


_SHELLS = {"sh", "bash", "ash", "dash"}
_TOOLS = {"sysctl": "/usr/sbin/sysctl", "cat": "/bin/cat", "grep": "/bin/grep"}
_SHELL_BUILTINS = {"echo", "true", "false", "exit", "command"}


def _runtime_start_error(executable: str, exec_id: str) -> str:
    if "/" in executable:
        why = f"stat {executable}: no such file or directory"
    else:
        why = "executable file not found in $PATH"
    return (
        "error executing command in container: failed to exec in container: failed to start "
        f'exec "{exec_id}": OCI runtime exec failed: exec failed: unable to start container '
        f'process: exec: "{executable}": {why}: unknown'
    )


class _Shell:
    """Answers exec in one container: ``values`` are its ``/proc/sys`` keys."""

    def __init__(self, values: dict[str, str], exec_id: str) -> None:
        self.values = values
        self.exec_id = exec_id

    def run(self, argv: list[str]) -> _ExecResult:
        program = posixpath.basename(argv[0])
        if program in _SHELLS:
            if len(argv) >= 3 and argv[1] == "-c":
                return self._script(argv[2])
            if len(argv) == 1:
                return _ExecResult()
            return _ExecResult(stderr=f"{program}: can't open '{argv[1]}'\n", exit_code=2)
        if program in _TOOLS and (argv[0] == program or argv[0].startswith("/")):
            return self._command(argv, "")
        return _ExecResult(start_error=_runtime_start_error(argv[0], self.exec_id))

    # Limitation: only `;`, `&&`, `||`, one pipe into grep and output redirections are
    # understood; other shell syntax is reported as a command that is not found.
    def _script(self, script: str) -> _ExecResult:
        try:
            lexer = shlex.shlex(script.replace("\n", ";"), posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError:
            return _ExecResult(stderr="sh: syntax error: unterminated quoted string\n", exit_code=2)
        total = _ExecResult()
        operator = ";"
        words: list[str] = []
        for token in [*tokens, ";"]:
            if token not in (";", "&&", "||"):
                words.append(token)
                continue
            if words and (
                operator == ";"
                or (operator == "&&" and total.exit_code == 0)
                or (operator == "||" and total.exit_code != 0)
            ):
                result = self._pipeline(words)
                total.stdout += result.stdout
                total.stderr += result.stderr
                total.exit_code = result.exit_code
                if words[0] == "exit":
                    break
            words = []
            operator = token
        return total

    def _pipeline(self, words: list[str]) -> _ExecResult:
        stages: list[list[str]] = [[]]
        for word in words:
            if word == "|":
                stages.append([])
            else:
                stages[-1].append(word)
        stdin = ""
        result = _ExecResult()
        stderr = ""
        for stage in stages:
            result = self._redirected(stage, stdin)
            stderr += result.stderr
            stdin = result.stdout
        return _ExecResult(stdout=result.stdout, stderr=stderr, exit_code=result.exit_code)

    def _redirected(self, words: list[str], stdin: str) -> _ExecResult:
        argv: list[str] = []
        targets = {1: "1", 2: "2"}
        index = 0
        while index < len(words):
            word = words[index]
            if word in (">", ">>", ">&") and index + 1 < len(words):
                fd = 1
                if argv and argv[-1] in ("1", "2"):
                    fd = int(argv.pop())
                target = words[index + 1]
                targets[fd] = target.lstrip("&") if word == ">&" else target
                index += 2
                continue
            argv.append(word)
            index += 1
        if not argv:
            return _ExecResult()
        result = self._command(argv, stdin)
        streams = {1: result.stdout, 2: result.stderr}
        routed = {"1": "", "2": ""}
        for fd, text in streams.items():
            if targets[fd] in routed:
                routed[targets[fd]] += text
        return _ExecResult(stdout=routed["1"], stderr=routed["2"], exit_code=result.exit_code)

    def _command(self, argv: list[str], stdin: str) -> _ExecResult:
        program = posixpath.basename(argv[0])
        args = argv[1:]
        if program == "sysctl":
            return self._sysctl(args)
        if program == "cat":
            return self._cat(args)
        if program == "grep":
            return _grep(args, stdin)
        if argv[0] == "echo":
            newline = not (args and args[0] == "-n")
            text = " ".join(args[1:] if not newline else args)
            return _ExecResult(stdout=text + ("\n" if newline else ""))
        if argv[0] in ("true", "false"):
            return _ExecResult(exit_code=0 if argv[0] == "true" else 1)
        if argv[0] == "exit":
            return _ExecResult(exit_code=int(args[0]) if args and args[0].isdigit() else 0)
        if argv[0] == "command" and len(args) == 2 and args[0] == "-v":
            known = {**_TOOLS, **{name: name for name in _SHELL_BUILTINS}}
            if args[1] in known:
                return _ExecResult(stdout=known[args[1]] + "\n")
            return _ExecResult(exit_code=1)
        return _ExecResult(stderr=f"sh: {argv[0]}: not found\n", exit_code=127)

    def _sysctl(self, args: list[str]) -> _ExecResult:
        value_only = names_only = ignore_unknown = show_all = False
        keys: list[str] = []
        for arg in args:
            if arg.startswith("-") and len(arg) > 1:
                flags = arg[1:]
                value_only = value_only or "n" in flags
                names_only = names_only or "N" in flags
                ignore_unknown = ignore_unknown or "e" in flags
                show_all = show_all or bool(set(flags) & {"a", "A", "X"})
            else:
                keys.append(arg)
        if show_all:
            keys = sorted(self.values)
        if not keys:
            return _ExecResult(
                stderr=(
                    "sysctl: no variables specified\nTry `sysctl --help' for more information.\n"
                ),
                exit_code=255,
            )
        result = _ExecResult()
        for key in keys:
            if "=" in key:
                name = key.split("=", 1)[0].strip().replace("/", ".")
                result.stderr += f'sysctl: setting key "{name}": Read-only file system\n'
                result.exit_code = 255
                continue
            name = key.replace("/", ".")
            if name in self.values:
                if value_only:
                    result.stdout += f"{self.values[name]}\n"
                elif names_only:
                    result.stdout += f"{name}\n"
                else:
                    result.stdout += f"{name} = {self.values[name]}\n"
            elif not ignore_unknown:
                path = "/proc/sys/" + name.replace(".", "/")
                result.stderr += f"sysctl: cannot stat {path}: No such file or directory\n"
                result.exit_code = 255
        return result

    def _cat(self, args: list[str]) -> _ExecResult:
        result = _ExecResult()
        for path in args:
            normal = posixpath.normpath(path)
            key = normal.removeprefix("/proc/sys/").replace("/", ".")
            if normal.startswith("/proc/sys/") and key in self.values:
                result.stdout += f"{self.values[key]}\n"
            else:
                result.stderr += f"cat: {path}: No such file or directory\n"
                result.exit_code = 1
        return result


def _grep(args: list[str], stdin: str) -> _ExecResult:
    invert = ignore_case = fixed = False
    patterns: list[str] = []
    for arg in args:
        if arg.startswith("-") and len(arg) > 1 and not patterns:
            invert = invert or "v" in arg
            ignore_case = ignore_case or "i" in arg
            fixed = fixed or "F" in arg
        else:
            patterns.append(arg)
    if not patterns:
        return _ExecResult(stderr="Usage: grep [OPTION]... PATTERNS [FILE]...\n", exit_code=2)
    flags = re.IGNORECASE if ignore_case else 0
    regex = re.compile(re.escape(patterns[0]) if fixed else patterns[0], flags)
    lines = [line for line in stdin.splitlines() if bool(regex.search(line)) != invert]
    return _ExecResult(stdout="".join(f"{line}\n" for line in lines), exit_code=0 if lines else 1)


def _exit_status(result: _ExecResult, command: list[str]) -> Obj:
    """The v4 error-channel Status for a finished command."""
    if result.start_error is not None:
        return _ApiError(
            500,
            "InternalError",
            f"Internal error occurred: {result.start_error}",
            {"causes": [{"message": result.start_error}]},
        ).status()
    if result.exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            "command terminated with non-zero exit code: error executing command "
            f"[{' '.join(command)}], exit code {result.exit_code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(result.exit_code)}]},
    }


# ---------------------------------------------------------------------------------------------
# Object store


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ingress_v1(obj: Obj) -> Obj:
    """An Ingress written against an old API version, in the networking.k8s.io/v1 shape."""

    def backend(old: Obj) -> Obj:
        if "service" in old or "resource" in old:
            return old
        port = old.get("servicePort")
        port_ref = {"number": port} if isinstance(port, int) else {"name": str(port)}
        return {"service": {"name": old.get("serviceName", ""), "port": port_ref}}

    new = copy.deepcopy(obj)
    new["apiVersion"] = "networking.k8s.io/v1"
    spec = new.setdefault("spec", {})
    if "backend" in spec:
        spec["defaultBackend"] = backend(spec.pop("backend"))
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            path.setdefault("pathType", "ImplementationSpecific")
            if isinstance(path.get("backend"), dict):
                path["backend"] = backend(path["backend"])
    return new


class _Store:
    """The cluster's objects, keyed by resource and then by (namespace, name)."""

    def __init__(self, objects: Iterable[Obj], cluster_name: str) -> None:
        self.lock = threading.RLock()
        self.cluster_name = cluster_name
        self.created = _now()
        self._version = itertools.count(1000)
        self._pod_ips = itertools.count(1)
        self.items: dict[_Resource, dict[tuple[str, str], Obj]] = {r: {} for r in _RESOURCES}
        for obj in objects:
            self._load(copy.deepcopy(obj))
        namespaces = {"default", "kube-system"}
        for res, objs in self.items.items():
            if res.namespaced:
                namespaces.update(ns for ns, _ in objs)
        for namespace in sorted(namespaces):
            if ("", namespace) not in self.items[_NAMESPACES]:
                ns_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
                self._load(ns_obj)
        for ns_obj in self.items[_NAMESPACES].values():
            ns_obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            ns_obj.setdefault("status", {"phase": "Active"})

    def _load(self, obj: Obj) -> None:
        kind = obj.get("kind")
        res = _BY_KIND.get(str(kind))
        if res is None:
            logger.warning("Scenario object of kind %s is not served", kind)
            return
        if res.kind == "Ingress" and obj.get("apiVersion") != res.group_version:
            obj = _ingress_v1(obj)
        obj["apiVersion"] = res.group_version
        meta = obj.setdefault("metadata", {})
        namespace = str(meta.get("namespace") or "default") if res.namespaced else ""
        if res.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        self.stamp(res, obj)
        self.items[res][(namespace, str(meta.get("name", "")))] = obj

    def next_version(self) -> str:
        return str(next(self._version))

    def stamp(self, res: _Resource, obj: Obj) -> None:
        meta = obj.setdefault("metadata", {})
        seed = f"{self.cluster_name}/{res.qualified}/{meta.get('namespace', '')}/{meta.get('name')}"
        meta.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, seed)))
        meta.setdefault("creationTimestamp", self.created)
        meta.setdefault("resourceVersion", self.next_version())
        if res.group == "apps":
            meta.setdefault("generation", 1)

    def next_pod_ip(self) -> str:
        index = next(self._pod_ips)
        return f"10.255.{index // 254 % 256}.{index % 254 + 1}"

    def namespace_exists(self, namespace: str) -> bool:
        return ("", namespace) in self.items[_NAMESPACES]

    def get(self, res: _Resource, namespace: str, name: str) -> Obj | None:
        found = self.items[res].get((namespace, name))
        if found is None and res in (_ENDPOINTS, _SLICES):
            found = next(
                (o for o in self.derived(res, namespace) if o["metadata"]["name"] == name), None
            )
        return found

    def all(self, res: _Resource, namespace: str | None) -> list[Obj]:
        objs = [o for (ns, _), o in self.items[res].items() if namespace in (None, ns)]
        if res in (_ENDPOINTS, _SLICES):
            objs.extend(self.derived(res, namespace))
        return sorted(objs, key=lambda o: (o["metadata"].get("namespace", ""), _name(o)))

    # Endpoints -----------------------------------------------------------------------------

    def derived(self, res: _Resource, namespace: str | None) -> list[Obj]:
        """EndpointSlices or Endpoints for selector Services the scenario lists none for."""
        # Limitation: derived objects can be read but not patched or deleted.
        derived: list[Obj] = []
        for (ns, name), service in sorted(self.items[_SERVICES].items()):
            selector = (service.get("spec") or {}).get("selector") or {}
            if namespace not in (None, ns) or not selector:
                continue
            if res is _SLICES:
                if not self._stored_slices(ns, name):
                    derived.extend(self._slices_for(service))
            elif (ns, name) not in self.items[_ENDPOINTS]:
                derived.append(self._endpoints_for(service))
        return derived

    def _stored_slices(self, namespace: str, service: str) -> list[Obj]:
        return [
            s
            for (ns, _), s in sorted(self.items[_SLICES].items())
            if ns == namespace and _labels_of(s).get(_SERVICE_NAME_LABEL) == service
        ]

    def _endpoint_groups(self, service: Obj) -> list[tuple[list[Obj], list[Obj]]]:
        """(endpoints, ports) groups, the EndpointSlice way: one group per resolved port set."""
        namespace = service["metadata"]["namespace"]
        stored = self._stored_slices(namespace, _name(service))
        if stored:
            return [(s.get("endpoints") or [], s.get("ports") or []) for s in stored]
        spec = service.get("spec") or {}
        selector = {str(k): str(v) for k, v in (spec.get("selector") or {}).items()}
        publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
        groups: dict[str, tuple[list[Obj], list[Obj]]] = {}
        for (ns, pod_name), pod in sorted(self.items[_PODS].items()):
            status = pod.get("status") or {}
            labels = _labels_of(pod)
            if ns != namespace or any(labels.get(k) != v for k, v in selector.items()):
                continue
            if not status.get("podIP") or status.get("phase") in ("Succeeded", "Failed"):
                continue
            ports = _resolve_ports(spec.get("ports") or [], pod)
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            endpoint: Obj = {
                "addresses": [status["podIP"]],
                "conditions": {
                    "ready": (ready or publish_not_ready) and not terminating,
                    "serving": ready or publish_not_ready,
                    "terminating": terminating,
                },
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": pod_name,
                    "uid": pod["metadata"]["uid"],
                },
            }
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name:
                endpoint["nodeName"] = node_name
                node = self.items[_NODES].get(("", node_name))
                zone = _labels_of(node).get("topology.kubernetes.io/zone") if node else None
                if zone:
                    endpoint["zone"] = zone
            group_key = json.dumps(ports, sort_keys=True)
            groups.setdefault(group_key, ([], ports))[0].append(endpoint)
        return list(groups.values()) or [([], [])]

    def _slices_for(self, service: Obj) -> list[Obj]:
        meta = service["metadata"]
        slices = []
        for index, (endpoints, ports) in enumerate(self._endpoint_groups(service)):
            digest = hashlib.sha1(f"{meta['namespace']}/{meta['name']}/{index}".encode())
            name = f"{meta['name']}-{digest.hexdigest()[:5]}"
            address_type = (
                "IPv6" if any(":" in a for e in endpoints for a in e["addresses"]) else "IPv4"
            )
            labels = {
                **_labels_of(service),
                _SERVICE_NAME_LABEL: meta["name"],
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            }
            slice_obj: Obj = {
                "apiVersion": _SLICES.group_version,
                "kind": _SLICES.kind,
                "metadata": {
                    "name": name,
                    "generateName": f"{meta['name']}-",
                    "namespace": meta["namespace"],
                    "labels": labels,
                    "ownerReferences": [_owner(service)],
                },
                "addressType": address_type,
                "endpoints": copy.deepcopy(endpoints),
                "ports": copy.deepcopy(ports),
            }
            self._stamp_derived(_SLICES, slice_obj)
            slices.append(slice_obj)
        return slices

    def _endpoints_for(self, service: Obj) -> Obj:
        meta = service["metadata"]
        subsets = []
        for endpoints, ports in self._endpoint_groups(service):
            ready: list[Obj] = []
            not_ready: list[Obj] = []
            for endpoint in endpoints:
                for address in endpoint.get("addresses") or []:
                    entry: Obj = {"ip": address}
                    if endpoint.get("nodeName"):
                        entry["nodeName"] = endpoint["nodeName"]
                    if endpoint.get("targetRef"):
                        entry["targetRef"] = copy.deepcopy(endpoint["targetRef"])
                    conditions = endpoint.get("conditions") or {}
                    (ready if conditions.get("ready", True) else not_ready).append(entry)
            if not ready and not not_ready:
                continue
            subset: Obj = {}
            if ready:
                subset["addresses"] = ready
            if not_ready:
                subset["notReadyAddresses"] = not_ready
            subset["ports"] = [
                {k: p[k] for k in ("name", "port", "protocol", "appProtocol") if k in p}
                for p in ports
            ]
            subsets.append(subset)
        endpoints_obj: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": _labels_of(service),
            },
        }
        if subsets:
            endpoints_obj["subsets"] = subsets
        self._stamp_derived(_ENDPOINTS, endpoints_obj)
        return endpoints_obj

    def _stamp_derived(self, res: _Resource, obj: Obj) -> None:
        meta = obj["metadata"]
        seed = f"{self.cluster_name}/{res.qualified}/{meta['namespace']}/{meta['name']}"
        meta["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
        meta["creationTimestamp"] = self.created
        # A derived object changes whenever the pods behind it do; the store's counter is the
        # honest version for it.
        meta["resourceVersion"] = str(next(self._version))


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _owner(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _resolve_ports(service_ports: list[Obj], pod: Obj) -> list[Obj]:
    """EndpointSlice ports for one pod: named target ports resolved through its containers."""
    named: dict[str, int] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") and "containerPort" in port:
                named.setdefault(str(port["name"]), int(port["containerPort"]))
    resolved = []
    for port in service_ports:
        target = port.get("targetPort", port.get("port"))
        if isinstance(target, int) and not isinstance(target, bool):
            number = target
        elif (digits := numbers.whole(str(target))) is not None:
            number = digits
        elif str(target) in named:
            number = named[str(target)]
        else:
            continue  # the pod does not expose this named port, as the controller skips it
        entry: Obj = {"name": port.get("name", ""), "port": number}
        entry["protocol"] = port.get("protocol", "TCP")
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        resolved.append(entry)
    return resolved


# ---------------------------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True)
class _Target:
    res: _Resource
    namespace: str | None
    name: str | None
    subresource: str | None


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


class _App:
    """The aiohttp handlers over one store."""

    def __init__(self, server: KubeApiServer) -> None:
        self.server = server
        self.store = server._store
        self.app = web.Application(client_max_size=8 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.dispatch)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.server._record(request.method, request.path)
        try:
            return await self._handle(request)
        except _ApiError as exc:
            logger.debug("%s %s -> %s %s", request.method, request.path, exc.code, exc.reason)
            return _json(exc.status(), status=exc.code)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["version"]:
            return _json(SERVER_VERSION)
        if parts == ["api"]:
            host = request.host
            return _json(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": host}
                    ],
                }
            )
        if parts == ["apis"]:
            return _json(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [_api_group(g, vs) for g, vs in _group_versions().items()],
                }
            )
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in _group_versions():
            api_group = _api_group(parts[1], _group_versions()[parts[1]])
            return _json({"kind": "APIGroup", "apiVersion": "v1", **api_group})
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _page_not_found()
        if not any(r.group == group and r.version == version for r in _RESOURCES):
            raise _page_not_found()
        if not rest:
            return _json(_resource_list(group, version))
        target = _route(group, version, rest)
        return await self._serve(request, target)

    async def _serve(self, request: web.Request, target: _Target) -> web.StreamResponse:
        method = request.method
        res, namespace, name, sub = target.res, target.namespace, target.name, target.subresource
        if sub == "exec" and res is _PODS and name and namespace:
            self._authorize(request, ("create", "get"), "pods/exec", res, namespace, name)
            return await self._exec(request, namespace, name)
        if name is None:
            if method == "GET":
                verb = "watch" if request.query.get("watch") in ("true", "1") else "list"
                self._authorize(request, (verb,), res.plural, res, namespace, None)
                if verb == "watch":
                    # Limitation: watches are refused, so a collector must list, not watch.
                    raise _ApiError(405, "MethodNotAllowed", "watch is not supported here")
                return self._list(request, res, namespace)
            if method == "POST" and (namespace is not None or not res.namespaced):
                self._authorize(request, ("create",), res.plural, res, namespace, None)
                return await self._create(request, res, namespace or "")
            raise _ApiError(405, "MethodNotAllowed", "the server does not allow this method")
        resource_name = f"{res.plural}/{sub}" if sub else res.plural
        if sub not in (None, *res.subresources):
            raise _page_not_found()
        key_ns = namespace or ""
        verbs = {"GET": "get", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
        if method not in verbs:
            raise _ApiError(405, "MethodNotAllowed", "the server does not allow this method")
        self._authorize(request, (verbs[method],), resource_name, res, namespace, name)
        if method == "GET":
            with self.store.lock:
                obj = self.store.get(res, key_ns, name)
                if obj is None:
                    raise _not_found(res, name)
                if sub == "log":
                    return web.Response(text="", content_type="text/plain")
                return _json(copy.deepcopy(obj))
        if method == "DELETE":
            return self._delete(request, res, key_ns, name)
        body = await _read_json(request)
        if method == "PATCH":
            content_type = request.content_type
            return self._patch(request, res, key_ns, name, content_type, body, sub)
        return self._replace(request, res, key_ns, name, body, sub)

    def _authorize(
        self,
        request: web.Request,
        verbs: tuple[str, ...],
        resource: str,
        res: _Resource,
        namespace: str | None,
        name: str | None,
    ) -> None:
        verb = self.server._forbidden(verbs, resource, res.group, namespace)
        if verb is None:
            return
        subject = f'{res.qualified} "{name}"' if name else res.qualified
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        message = (
            f'{subject} is forbidden: User "{SANDBOX_USER}" cannot {verb} resource '
            f'"{resource}" in API group "{res.group}" {scope}'
        )
        logger.debug("Refusing %s %s as the forbid list says", request.method, request.path)
        raise _ApiError(403, "Forbidden", message, _details(res, name))

    # Reads -------------------------------------------------------------------------------

    def _list(self, request: web.Request, res: _Resource, namespace: str | None) -> web.Response:
        label_terms = _parse_labels(request.query.get("labelSelector", ""))
        field_terms = _parse_fields(request.query.get("fieldSelector", ""))
        with self.store.lock:
            items = [
                copy.deepcopy(o)
                for o in self.store.all(res, namespace)
                if _labels_match(label_terms, _labels_of(o)) and _fields_match(field_terms, o)
            ]
            version = self.store.next_version()
        meta: Obj = {"resourceVersion": version}
        limit = request.query.get("limit", "")
        start = _continue_offset(request.query.get("continue", ""))
        if limit.isdigit() and int(limit) > 0:
            end = start + int(limit)
            if end < len(items):
                meta["continue"] = f"offset-{end}"
                meta["remainingItemCount"] = len(items) - end
            items = items[start:end]
        else:
            items = items[start:]
        body: Obj = {"kind": f"{res.kind}List", "apiVersion": res.group_version}
        body["metadata"] = meta
        body["items"] = items
        return _json(body)

    # Writes ------------------------------------------------------------------------------

    async def _create(self, request: web.Request, res: _Resource, namespace: str) -> web.Response:
        body = await _read_json(request)
        if not isinstance(body, dict):
            raise _bad_request("the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        if obj.get("kind", res.kind) != res.kind:
            raise _bad_request(f"the kind of the object ({obj['kind']}) does not match {res.kind}")
        obj["kind"] = res.kind
        obj["apiVersion"] = res.group_version
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            if meta.get("namespace", namespace) != namespace:
                raise _bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace
        if not meta.get("name") and meta.get("generateName"):
            digest = hashlib.sha1(f"{meta['generateName']}{uuid.uuid4()}".encode()).hexdigest()
            meta["name"] = f"{meta['generateName']}{digest[:5]}"
        name = str(meta.get("name") or "")
        if not name:
            raise _invalid(
                res, "", "metadata.name: Required value: name or generateName is required"
            )
        for field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
            meta.pop(field, None)
        with self.store.lock:
            if res.namespaced and not self.store.namespace_exists(namespace):
                raise _namespace_not_found(namespace)
            if (namespace, name) in self.store.items[res]:
                raise _ApiError(
                    409,
                    "AlreadyExists",
                    f'{res.qualified} "{name}" already exists',
                    _details(res, name),
                )
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            self.store.stamp(res, obj)
            if res is _PODS:
                self._start_pod(obj)
            if _dry_run(request):
                return _json(obj, status=201)
            self.store.items[res][(namespace, name)] = obj
            logger.info("Created %s %s/%s", res.kind, namespace, name)
            return _json(copy.deepcopy(obj), status=201)

    def _start_pod(self, pod: Obj) -> None:
        """What the scheduler and kubelet would do for a new pod, at once."""
        spec = pod.setdefault("spec", {})
        meta = pod["metadata"]
        containers = spec.get("containers") or []
        if not containers:
            raise _invalid(_PODS, meta["name"], "spec.containers: Required value")
        if not spec.get("nodeName"):
            wanted = (spec.get("nodeSelector") or {}).get("kubernetes.io/hostname")
            nodes = sorted(self.store.items[_NODES].values(), key=_name)
            chosen = next(
                (
                    n
                    for n in nodes
                    if wanted is None
                    or wanted in (_name(n), _labels_of(n).get("kubernetes.io/hostname"))
                ),
                None,
            )
            if chosen is not None:
                spec["nodeName"] = _name(chosen)
        node = self.store.items[_NODES].get(("", spec.get("nodeName", "")))
        node_ip = next(
            (
                a.get("address")
                for a in ((node or {}).get("status") or {}).get("addresses") or []
                if a.get("type") == "InternalIP"
            ),
            None,
        )
        pod_ip = node_ip if spec.get("hostNetwork") and node_ip else self.store.next_pod_ip()
        started = _now()
        condition_types = ("PodReadyToStartContainers", "Initialized", "Ready")
        conditions = [
            {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": started}
            for t in (*condition_types, "ContainersReady", "PodScheduled")
        ]
        status: Obj = {
            "phase": "Running",
            "conditions": conditions,
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": started,
            "qosClass": "BestEffort",
            "containerStatuses": [
                {
                    "name": c.get("name", ""),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "containerID": "containerd://"
                    + hashlib.sha256(meta["uid"].encode()).hexdigest(),
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": started}},
                }
                for c in containers
            ],
        }
        if node_ip:
            status["hostIP"] = node_ip
            status["hostIPs"] = [{"ip": node_ip}]
        pod["status"] = status

    def _delete(
        self, request: web.Request, res: _Resource, namespace: str, name: str
    ) -> web.Response:
        with self.store.lock:
            obj = self.store.items[res].get((namespace, name))
            if obj is None:
                raise _not_found(res, name)
            if not _dry_run(request):
                del self.store.items[res][(namespace, name)]
                logger.info("Deleted %s %s/%s", res.kind, namespace, name)
            if res is _PODS:
                # A pod's deletion is graceful: the API answers with the pod, marked for deletion.
                pod = copy.deepcopy(obj)
                pod["metadata"]["deletionTimestamp"] = _now()
                pod["metadata"]["deletionGracePeriodSeconds"] = 30
                return _json(pod)
            details = {**_details(res, name), "uid": obj["metadata"]["uid"]}
            return _json(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }
            )

    def _patch(
        self,
        request: web.Request,
        res: _Resource,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        sub: str | None,
    ) -> web.Response:
        # Limitation: server-side apply (apply-patch+yaml) is refused with 415.
        kinds = (
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        )
        if content_type not in kinds:
            raise _ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(kinds)}",
            )
        if content_type != "application/json-patch+json" and not isinstance(body, dict):
            raise _bad_request("the body of the request must be a JSON object")
        with self.store.lock:
            current = self.store.items[res].get((namespace, name))
            if current is None:
                raise _not_found(res, name)
            try:
                patched = _apply_patch(content_type, current, body)
            except _PatchError as exc:
                raise _ApiError(422, "Invalid", f"the server rejected our request: {exc}") from exc
            return self._store_update(request, res, current, patched, sub)

    def _replace(
        self,
        request: web.Request,
        res: _Resource,
        namespace: str,
        name: str,
        body: Any,
        sub: str | None,
    ) -> web.Response:
        if not isinstance(body, dict):
            raise _bad_request("the body of the request must be a JSON object")
        with self.store.lock:
            current = self.store.items[res].get((namespace, name))
            if current is None:
                raise _not_found(res, name)
            sent_version = (body.get("metadata") or {}).get("resourceVersion")
            if sent_version and sent_version != current["metadata"]["resourceVersion"]:
                raise _ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has '
                    "been modified; please apply your changes to the latest version and try again",
                    _details(res, name),
                )
            return self._store_update(request, res, current, copy.deepcopy(body), sub)

    def _store_update(
        self, request: web.Request, res: _Resource, current: Obj, updated: Any, sub: str | None
    ) -> web.Response:
        """Validate an updated object, keep what clients may not change, and store it."""
        name = _name(current)
        namespace = current["metadata"].get("namespace", "")
        if not isinstance(updated, dict) or not isinstance(updated.get("metadata"), dict):
            raise _invalid(res, name, "metadata: Required value")
        if _name(updated) != name:
            raise _bad_request(
                f"the name of the object ({_name(updated)}) does not match the name on the URL "
                f"({name})"
            )
        if res.namespaced and updated["metadata"].get("namespace", namespace) != namespace:
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        updated["kind"] = res.kind
        updated["apiVersion"] = res.group_version
        meta = updated["metadata"]
        if res.namespaced:
            meta["namespace"] = namespace
        for field in ("uid", "creationTimestamp", "generation"):
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
            else:
                meta.pop(field, None)
        if sub == "status":
            # Through the status subresource only status changes.
            updated = {**copy.deepcopy(current), "status": updated.get("status")}
            meta = updated["metadata"]
        elif res.has_status:
            if "status" in current:
                updated["status"] = copy.deepcopy(current["status"])
            else:
                updated.pop("status", None)
        if "generation" in meta and updated.get("spec") != current.get("spec"):
            meta["generation"] = int(meta["generation"]) + 1
        meta["resourceVersion"] = self.store.next_version()
        if not _dry_run(request):
            self.store.items[res][(namespace, name)] = updated
            logger.info("Updated %s %s/%s", res.kind, namespace, name)
        return _json(copy.deepcopy(updated))

    # Exec --------------------------------------------------------------------------------

    async def _exec(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        query = request.query
        command = query.getall("command", [])
        with self.store.lock:
            pod = copy.deepcopy(self.store.items[_PODS].get((namespace, name)))
        if pod is None:
            raise _not_found(_PODS, name)
        spec = pod.get("spec") or {}
        containers = [str(c.get("name")) for c in spec.get("containers") or []]
        others = [
            str(c.get("name"))
            for c in (spec.get("initContainers") or []) + (spec.get("ephemeralContainers") or [])
        ]
        container = query.get("container")
        if container:
            if container not in containers + others:
                raise _bad_request(f"container {container} is not valid for pod {name}")
        elif len(containers) > 1:
            raise _bad_request(
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(containers)}]"
            )
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            raise _bad_request(
                f"cannot exec into a container in a completed pod; current phase is {phase}"
            )
        if not command:
            raise _bad_request("you must specify at least 1 command")
        streams = {s: query.get(s) in ("true", "1") for s in ("stdin", "stdout", "stderr", "tty")}
        if not (streams["stdin"] or streams["stdout"] or streams["stderr"]):
            raise _bad_request("you must specify at least one of stdin, stdout, stderr")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise _bad_request("Upgrade request required")

        result = self.server._run_exec(pod, command)
        logger.info(
            "Exec in pod %s/%s: %s -> exit %s",
            namespace,
            name,
            " ".join(command),
            "start error" if result.start_error else result.exit_code,
        )
        ws = web.WebSocketResponse(protocols=_CHANNEL_PROTOCOLS, timeout=2.0, autoping=True)
        await ws.prepare(request)
        protocol = ws.ws_protocol or "channel.k8s.io"
        stderr_channel = _STDOUT if streams["tty"] else _STDERR
        if result.stdout and streams["stdout"]:
            await ws.send_bytes(bytes([_STDOUT]) + result.stdout.encode())
        if result.stderr and (streams["stderr"] or streams["tty"]):
            await ws.send_bytes(bytes([stderr_channel]) + result.stderr.encode())
        status = _exit_status(result, command)
        if protocol.startswith(("v4.", "v5.")):
            await ws.send_bytes(bytes([_ERROR]) + json.dumps(status).encode())
        elif status["status"] != "Success":
            # Before v4 the error channel carried plain text, and nothing on success.
            await ws.send_bytes(bytes([_ERROR]) + str(status.get("message", "")).encode())
        await ws.close(code=WSCloseCode.OK)
        return ws


def _api_group(group: str, versions: list[str]) -> Obj:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def _resource_list(group: str, version: str) -> Obj:
    resources: list[Obj] = []
    for res in _RESOURCES:
        if res.group != group or res.version != version:
            continue
        entry: Obj = {
            "name": res.plural,
            "singularName": res.kind.lower(),
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": _VERBS,
        }
        if res.short_names:
            entry["shortNames"] = list(res.short_names)
        resources.append(entry)
        for sub in res.subresources:
            verbs = {"exec": ["create", "get"], "log": ["get"]}.get(sub, ["get", "patch", "update"])
            sub_kind = {"exec": "PodExecOptions", "log": "Pod"}.get(sub, res.kind)
            resources.append(
                {
                    "name": f"{res.plural}/{sub}",
                    "singularName": "",
                    "namespaced": res.namespaced,
                    "kind": sub_kind,
                    "verbs": verbs,
                }
            )
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }


def _route(group: str, version: str, rest: list[str]) -> _Target:
    def lookup(plural: str) -> _Resource | None:
        return _BY_PATH.get((group, version, plural))

    if rest[0] == "namespaces" and len(rest) >= 3 and lookup(rest[2]) is not None:
        res = lookup(rest[2])
        if res is None or not res.namespaced or len(rest) > 5:
            raise _page_not_found()
        return _Target(res, rest[1], _at(rest, 3), _at(rest, 4))
    res = lookup(rest[0])
    if res is None or len(rest) > 3:
        raise _page_not_found()
    if res.namespaced and len(rest) > 1:
        raise _page_not_found()
    return _Target(res, None, _at(rest, 1), _at(rest, 2))


def _at(parts: list[str], index: int) -> str | None:
    return parts[index] if len(parts) > index else None


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise _bad_request(f"Invalid dry run value: {value}")
    return bool(values)


def _continue_offset(token: str) -> int:
    if not token:
        return 0
    if token.startswith("offset-") and token[7:].isdigit():
        return int(token[7:])
    raise _ApiError(410, "Expired", "The provided continue parameter is too old")


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _bad_request(f"the body of the request could not be decoded: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# The server


class KubeApiServer:
    """A Kubernetes API server for one scenario, on 127.0.0.1, in a background thread."""

    def __init__(
        self,
        objects: list[dict[str, Any]],
        exec_values: dict[str, dict[str, Any]],
        *,
        cluster_name: str = "demo",
    ) -> None:
        self.cluster_name = cluster_name
        self._store = _Store(objects, cluster_name)
        self._exec_values = {
            str(key): {str(k).replace("/", "."): str(v) for k, v in (values or {}).items()}
            for key, values in exec_values.items()
        }
        self._forbidden_rules: set[tuple[str, str, str | None]] = set()
        self._log: list[tuple[str, str]] = []
        self._log_lock = threading.Lock()
        self._exec_count = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    # Lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        if self._thread is not None:
            return self.url
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._startup())
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="kube-api-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError("the local Kubernetes API server did not start") from failure[0]
        logger.info("Local Kubernetes API server for %s at %s", self.cluster_name, self.url)
        return self.url

    async def _startup(self) -> None:
        runner = web.AppRunner(
            _App(self).app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            future.result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=15)
        self._thread = None
        self._loop = None
        self._runner = None
        logger.info("Local Kubernetes API server for %s stopped", self.cluster_name)

    def __enter__(self) -> KubeApiServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Client setup and test hooks ---------------------------------------------------------

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig whose current context talks to this server with a bearer token."""
        if not self.url:
            raise RuntimeError("start the server before writing its kubeconfig")
        user = f"{self.cluster_name}-sandbox"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.cluster_name, "cluster": {"server": self.url}}],
            "users": [{"name": user, "user": {"token": SANDBOX_TOKEN}}],
            "contexts": [
                {
                    "name": self.cluster_name,
                    "context": {"cluster": self.cluster_name, "user": user, "namespace": "default"},
                }
            ],
            "current-context": self.cluster_name,
            "preferences": {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Current objects of a kind (``Pod``, ``Deployment``...), derived endpoints included."""
        res = _BY_KIND.get(kind)
        if res is None:
            raise KeyError(f"kind {kind} is not served")
        with self._store.lock:
            return copy.deepcopy(self._store.all(res, namespace))

    def forbid(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Answer ``verb`` on ``resource`` (``services``, ``pods/exec``,
        ``ingresses.networking.k8s.io``) with 403, in one namespace or everywhere.

        A rule for one namespace leaves lists across all namespaces allowed."""
        self._forbidden_rules.add((verb, resource, namespace))

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self._log_lock:
            return list(self._log)

    # Used by the handlers ----------------------------------------------------------------

    def _record(self, method: str, path: str) -> None:
        with self._log_lock:
            self._log.append((method, path))

    def _forbidden(
        self, verbs: tuple[str, ...], resource: str, group: str, namespace: str | None
    ) -> str | None:
        """The first of ``verbs`` the forbid list denies here, if any."""
        for verb in verbs:
            for rule_verb, rule_resource, rule_namespace in self._forbidden_rules:
                head, slash, subresource = rule_resource.partition("/")
                plural, _, rule_group = head.partition(".")
                if (
                    rule_verb in (verb, "*")
                    and plural + slash + subresource in (resource, "*")
                    and rule_group in ("", group)
                    and rule_namespace in (None, namespace)
                ):
                    return verb
        return None

    def _run_exec(self, pod: Obj, command: list[str]) -> _ExecResult:
        meta = pod["metadata"]
        spec = pod.get("spec") or {}
        values = self._exec_values.get(f"{meta['namespace']}/{meta['name']}")
        if values is None and spec.get("hostNetwork"):
            # A host-network pod shares the node's network namespace, so it reads the node's.
            values = self._exec_values.get(f"node/{spec.get('nodeName', '')}")
        exec_id = hashlib.sha256(
            f"{_EXEC_ID_SEED}/{meta['uid']}/{next(self._exec_count)}".encode()
        ).hexdigest()
        if values is None:
            # No values: a container without a shell or sysctl, such as a distroless image.
            return _ExecResult(start_error=_runtime_start_error(command[0], exec_id))
        return _Shell(values, exec_id).run(command)
