"""Applying a fix that is one Kubernetes patch: plan, dry-run, apply, undo. No Slack here.

A :class:`~checks.models.Fix` whose ``apply`` is set names one object and one patch. The
flow a chat front end drives:

- :func:`plan` reads the object and the cluster's version and says whether the patch may
  be applied here: never to a pod; not where Argo CD or Flux manages the object (a patch
  would be reverted at the next sync, so the change is offered for Git instead); not where
  the cluster would refuse what the patch sets (the TCP keepalive sysctls are safe by
  default only from Kubernetes 1.29).
- :func:`dry_run` sends the patch with ``dryRun=All``: the API server validates and
  admits it without storing anything.
- :func:`apply` dry-runs, then patches, then writes an :class:`~bot.audit.AuditEntry` that
  keeps every value the patch replaced.
- :func:`undo` restores those values with a JSON patch that first tests that each value
  is still what the fix set, so an undo never overwrites a later change.

:class:`ApplyService` ties these to who may apply (:mod:`bot.apply_policy`), to offers
kept server-side under a short id (a Slack button value holds 2000 characters, a patch
may not fit), and to the audit log.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import redis
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from bot.apply_policy import ApplyPolicy, GroupMembers
from bot.audit import (
    APPLIED,
    DRY_RUN_FAILED,
    FAILED,
    REFUSED,
    UNCHANGED,
    AuditEntry,
    AuditLog,
    Change,
)
from checks.collect.kube import api_client
from checks.collect.settings import Connection
from checks.errors import Eks504Error
from checks.models import Finding, Fix, KubePatch, Target

logger = logging.getLogger(__name__)

FIELD_MANAGER = "eks504"

_CONTENT_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}


class ApplyError(Eks504Error):
    """The API server refused a read or a patch; ``status`` is its HTTP status."""

    def __init__(self, message: str, hint: str = "", status: int = 0) -> None:
        super().__init__(message, hint)
        self.status = status


# ---------------------------------------------------------------------------
# What can be patched


@dataclass(frozen=True)
class _Kind:
    kind: str
    api: str  # the client class: core, apps or networking
    method: str  # read_/patch_ + this
    resource: str  # for messages and RBAC: deployments.apps
    pod_template: bool = False


_KINDS = {
    k.kind.lower(): k
    for k in (
        _Kind("Deployment", "apps", "namespaced_deployment", "deployments.apps", True),
        _Kind("StatefulSet", "apps", "namespaced_stateful_set", "statefulsets.apps", True),
        _Kind("DaemonSet", "apps", "namespaced_daemon_set", "daemonsets.apps", True),
        _Kind("Service", "core", "namespaced_service", "services"),
        _Kind("ConfigMap", "core", "namespaced_config_map", "configmaps"),
        _Kind("Ingress", "networking", "namespaced_ingress", "ingresses.networking.k8s.io"),
    )
}

NEVER_A_POD = (
    "eks504 never patches a pod: its owner would replace it, and most of a pod's spec cannot "
    "change. Patch the Deployment or StatefulSet that owns it."
)


def _kind(name: str) -> _Kind | None:
    return _KINDS.get(name.lower())


def canonical_kind(name: str) -> str:
    found = _kind(name)
    return found.kind if found else name


# ---------------------------------------------------------------------------
# The cluster


def _status_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, TypeError, AttributeError):
        return str(exc.reason)


def _parse_version(data: Mapping[str, Any]) -> tuple[int, int] | None:
    major = re.match(r"\d+", str(data.get("major", "")))
    minor = re.match(r"\d+", str(data.get("minor", "")))
    if major and minor:
        return int(major.group()), int(minor.group())
    found = re.match(r"v?(\d+)\.(\d+)", str(data.get("gitVersion", "")))
    return (int(found.group(1)), int(found.group(2))) if found else None


class Cluster:
    """Reads and patches objects through the official client, for one kube connection."""

    def __init__(self, connection: Connection, name: str = "default") -> None:
        self.connection = connection
        self.name = name
        self._version: tuple[int, int] | None = None

    def _call(self, verb: str, kind: _Kind, namespace: str, name: str, **kwargs: Any) -> Any:
        started = time.monotonic()
        what = f"{kind.resource} {namespace}/{name}"
        try:
            with api_client(self.connection) as api:
                apis = {
                    "core": k8s.CoreV1Api,
                    "apps": k8s.AppsV1Api,
                    "networking": k8s.NetworkingV1Api,
                }
                method = getattr(apis[kind.api](api), f"{verb}_{kind.method}")
                response = method(name, namespace, _preload_content=False, **kwargs)
                data = json.loads(response.data)
        except ApiException as exc:
            logger.info(
                "kubernetes %s %s -> HTTP %s in %.3f s",
                verb,
                what,
                exc.status,
                time.monotonic() - started,
            )
            message = _status_message(exc)
            if exc.status in (401, 403):
                raise ApplyError(
                    f"Kubernetes refused to {verb} {what}: {message}.",
                    f"Grant RBAC verb `{verb}` on `{kind.resource}` in namespace {namespace}.",
                    exc.status,
                ) from exc
            raise ApplyError(f"{message} (HTTP {exc.status}).", status=exc.status) from exc
        except (HTTPError, OSError) as exc:
            raise ApplyError(f"Cannot reach the Kubernetes API to {verb} {what}: {exc}.") from exc
        logger.info(
            "kubernetes %s %s%s -> ok in %.3f s",
            verb,
            what,
            " (dry run)" if kwargs.get("dry_run") else "",
            time.monotonic() - started,
        )
        return data

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        found = _kind(kind)
        if found is None:
            raise ApplyError(f"eks504 does not patch {kind} objects.")
        data: dict[str, Any] = self._call("read", found, namespace, name)
        return data

    def patch(self, patch: KubePatch, *, dry_run: bool) -> dict[str, Any]:
        found = _kind(patch.kind)
        if found is None:
            raise ApplyError(f"eks504 does not patch {patch.kind} objects.")
        kwargs: dict[str, Any] = {
            "field_manager": FIELD_MANAGER,
            "_content_type": _CONTENT_TYPES[patch.patch_type],
        }
        if dry_run:
            kwargs["dry_run"] = "All"
        data: dict[str, Any] = self._call(
            "patch",
            found,
            patch.namespace,
            patch.name,
            body=patch.patch,
            **kwargs,
        )
        return data

    def version(self) -> tuple[int, int] | None:
        """The server's (major, minor), read once; None when it cannot be read."""
        if self._version is None:
            started = time.monotonic()
            try:
                with api_client(self.connection) as api:
                    response: Any = k8s.VersionApi(api).get_code(_preload_content=False)
                    self._version = _parse_version(json.loads(response.data))
            except (ApiException, HTTPError, OSError, ValueError) as exc:
                logger.info("kubernetes GET /version failed: %s", exc)
                return None
            logger.info(
                "kubernetes GET /version -> %s in %.3f s",
                self._version,
                time.monotonic() - started,
            )
        return self._version


# ---------------------------------------------------------------------------
# Who manages an object


def manager_of(obj: Mapping[str, Any]) -> str:
    """The GitOps tool that reconciles ``obj`` from Git, in words; "" when none does."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    tracking = str(annotations.get("argocd.argoproj.io/tracking-id", ""))
    if tracking:
        return f"Argo CD (application {tracking.split(':', 1)[0]})"
    if labels.get("argocd.argoproj.io/instance"):
        return f"Argo CD (application {labels['argocd.argoproj.io/instance']})"
    for tool, prefix in (("Kustomization", "kustomize"), ("HelmRelease", "helm")):
        name = labels.get(f"{prefix}.toolkit.fluxcd.io/name")
        if name:
            namespace = labels.get(f"{prefix}.toolkit.fluxcd.io/namespace", "")
            where = f"{namespace}/{name}" if namespace else name
            return f"Flux ({tool} {where})"
    return ""


# ---------------------------------------------------------------------------
# What a patch needs of the cluster


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in nested dicts and lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key), item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _patch_values(patch: KubePatch) -> Iterator[tuple[str, Any]]:
    if patch.patch_type != "json":
        yield from _walk(patch.patch)
        return
    # A JSON patch names the key in its path: treat each op as {last path token: value}.
    for op in patch.patch if isinstance(patch.patch, list) else []:
        if isinstance(op, dict) and "value" in op:
            tokens = _tokens(str(op.get("path", "")))
            tokens = [t for t in tokens if not t.isdigit() and t != "-"]
            key = tokens[-1] if tokens else ""
            yield key, op["value"]
            yield from _walk(op["value"])


def _sysctl_names(patch: KubePatch) -> list[str]:
    names = []
    for key, value in _patch_values(patch):
        items = value if isinstance(value, list) else [value]
        if key == "sysctls":
            names += [str(i.get("name")) for i in items if isinstance(i, dict) and i.get("name")]
    return names


def _uses_sleep_action(patch: KubePatch) -> bool:
    return any(
        key == "preStop" and isinstance(value, dict) and value.get("sleep") is not None
        for key, value in _patch_values(patch)
    )


@dataclass(frozen=True)
class _Need:
    minimum: tuple[int, int]
    why: str
    applies: Callable[[KubePatch], bool]


_NEEDS = (
    _Need(
        (1, 29),
        "the net.ipv4.tcp_keepalive_* sysctls are allowed by default only from Kubernetes "
        "1.29; before that, pods that set them are rejected unless every kubelet allows them "
        "as unsafe sysctls",
        lambda p: any(n.startswith("net.ipv4.tcp_keepalive_") for n in _sysctl_names(p)),
    ),
    _Need(
        (1, 30),
        "the preStop sleep action is on by default only from Kubernetes 1.30",
        _uses_sleep_action,
    ),
)


def _too_old(patch: KubePatch, version: tuple[int, int] | None) -> str:
    for need in _NEEDS:
        if not need.applies(patch):
            continue
        wanted = f"{need.minimum[0]}.{need.minimum[1]}"
        if version is None:
            return f"Could not read the cluster's version, and {need.why} (needs {wanted})."
        if version < need.minimum:
            return f"This cluster runs Kubernetes {version[0]}.{version[1]}, and {need.why}."
    return ""


# ---------------------------------------------------------------------------
# Differences, as JSON pointers


_MISSING: Any = object()
# Fields the API server changes on every write; they are not part of a fix.
_IGNORED = frozenset(
    {
        "/metadata/resourceVersion",
        "/metadata/generation",
        "/metadata/managedFields",
        "/metadata/uid",
        "/metadata/creationTimestamp",
        "/status",
    }
)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _tokens(path: str) -> list[str]:
    if not path:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in path.lstrip("/").split("/")]


def _diff(before: Any, after: Any, path: str, out: list[Change]) -> None:
    if path in _IGNORED:
        return
    if isinstance(after, dict) and (isinstance(before, dict) or before is _MISSING):
        # Descend into a new map too, so an undo removes only the keys the fix added.
        old = before if isinstance(before, dict) else {}
        for key in sorted(set(old) | set(after), key=str):
            _diff(old.get(key, _MISSING), after.get(key, _MISSING), f"{path}/{_escape(key)}", out)
        return
    if before == after:
        return
    out.append(
        Change(
            path=path,
            before=None if before is _MISSING else copy.deepcopy(before),
            after=None if after is _MISSING else copy.deepcopy(after),
            was_set=before is not _MISSING,
            is_set=after is not _MISSING,
        )
    )


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Change, ...]:
    """What differs from ``before`` to ``after``; lists count as one value each."""
    out: list[Change] = []
    _diff(dict(before), dict(after), "", out)
    return tuple(out)


# ---------------------------------------------------------------------------
# How a patch reads to people


def kubectl_command(patch: KubePatch) -> str:
    """The ``kubectl patch`` that does the same, every value shell-quoted."""
    body = json.dumps(patch.patch, separators=(",", ":"))
    resource = canonical_kind(patch.kind).lower()
    return (
        f"kubectl patch {shlex.quote(resource)} {shlex.quote(patch.name)} "
        f"--namespace {shlex.quote(patch.namespace)} --type {shlex.quote(patch.patch_type)} "
        f"--patch {shlex.quote(body)}"
    )


def _changed_items(before: Any, after: Any) -> Any:
    """For a list of named maps (containers, env), only the entries that changed, each
    with its name and the keys that changed; any other value whole."""
    if not (
        isinstance(after, list)
        and isinstance(before, list)
        and all(isinstance(i, dict) and "name" in i for i in [*before, *after])
    ):
        return copy.deepcopy(after)
    old = {i["name"]: i for i in before}
    items = []
    for item in after:
        previous = old.get(item["name"], {})
        if item == previous:
            continue
        keys = [k for k in item if k != "name" and item[k] != previous.get(k)]
        keys += [k for k in previous if k not in item]
        items.append({"name": item["name"], **{k: copy.deepcopy(item.get(k)) for k in keys}})
    return items


def manifest_fragment(changes: tuple[Change, ...]) -> dict[str, Any]:
    """The changed fields as a manifest fragment; ``null`` marks a field to delete."""
    fragment: dict[str, Any] = {}
    for change in changes:
        tokens = _tokens(change.path)
        if not tokens:
            continue
        node = fragment
        for token in tokens[:-1]:
            node = node.setdefault(token, {})
        value = _changed_items(change.before, change.after) if change.is_set else None
        node[tokens[-1]] = value
    return fragment


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=10_000)


# ---------------------------------------------------------------------------
# Plan, dry run, apply, undo


@dataclass(frozen=True)
class Plan:
    """A patch and what the cluster says about applying it here."""

    fix: Fix
    patch: KubePatch
    cluster: str = "default"
    refusal: str = ""  # why it cannot be applied here at all
    manager: str = ""  # the GitOps tool that would revert it
    git_snippet: str = ""  # the change as YAML, for Git, where a GitOps tool manages it

    @property
    def applicable(self) -> bool:
        return not self.refusal and not self.manager

    @property
    def object_ref(self) -> str:
        return f"{self.patch.kind.lower()}/{self.patch.namespace}/{self.patch.name}"

    @property
    def command(self) -> str:
        return kubectl_command(self.patch)

    @property
    def body(self) -> str:
        return json.dumps(self.patch.patch, indent=2, ensure_ascii=False)


def _git_snippet(plan: Plan, cluster: Cluster, current: Mapping[str, Any]) -> str:
    header = f"# {plan.object_ref}: merge into its manifest in Git\n# (null deletes a field)\n"
    try:
        after = cluster.patch(plan.patch, dry_run=True)
    except ApplyError as err:
        logger.debug("dry run for the Git snippet of %s failed: %s", plan.object_ref, err)
        if plan.patch.patch_type == "json":
            return "# JSON patch operations to carry over into the manifest\n" + _yaml(
                plan.patch.patch
            )
        return header + _yaml(plan.patch.patch)
    fragment = manifest_fragment(changes_between(current, after))
    if not fragment:
        return f"# {plan.object_ref} already has this change.\n"
    return header + _yaml(fragment)


def plan(fix: Fix, cluster: Cluster) -> Plan:
    """Whether ``fix`` may be applied on ``cluster``; reads the object and the version."""
    if fix.apply is None:
        raise ValueError(f"fix {fix.title!r} carries no patch")
    patch = replace(fix.apply, kind=canonical_kind(fix.apply.kind))
    planned = Plan(fix=fix, patch=patch, cluster=cluster.name)
    if patch.kind.lower() == "pod":
        return replace(planned, refusal=NEVER_A_POD)
    if _kind(patch.kind) is None:
        return replace(planned, refusal=f"eks504 does not patch {patch.kind} objects.")
    if patch.patch_type not in _CONTENT_TYPES:
        return replace(planned, refusal=f"Unknown patch type {patch.patch_type!r}.")
    try:
        current = cluster.read(patch.kind, patch.namespace, patch.name)
    except ApplyError as err:
        return replace(planned, refusal=f"Cannot read {planned.object_ref}: {err}")
    manager = manager_of(current)
    if manager:
        planned = replace(planned, manager=manager)
        return replace(planned, git_snippet=_git_snippet(planned, cluster, current))
    needs = _too_old(patch, cluster.version())
    if needs:
        return replace(planned, refusal=needs)
    logger.debug("plan for %s: can be applied", planned.object_ref)
    return planned


@dataclass(frozen=True)
class DryRun:
    ok: bool
    message: str = ""
    changes: tuple[Change, ...] = ()


def dry_run(planned: Plan, cluster: Cluster) -> DryRun:
    """The patch sent with ``dryRun=All``: validated and admitted, nothing stored."""
    try:
        before = cluster.read(planned.patch.kind, planned.patch.namespace, planned.patch.name)
        after = cluster.patch(planned.patch, dry_run=True)
    except ApplyError as err:
        return DryRun(ok=False, message=str(err))
    return DryRun(ok=True, changes=changes_between(before, after))


def apply(
    planned: Plan,
    cluster: Cluster,
    *,
    user: str,
    audit: AuditLog,
    action: str = "apply",
    undoes: str = "",
) -> AuditEntry:
    """Dry-run, then patch, then record; returns the recorded entry, whatever the result."""
    patch = planned.patch
    entry = AuditEntry(
        action=action,
        user=user,
        cluster=planned.cluster,
        kind=patch.kind,
        namespace=patch.namespace,
        name=patch.name,
        title=planned.fix.title,
        patch_type=patch.patch_type,
        patch=patch.patch,
        result=REFUSED,
        undoes=undoes,
    )
    if not planned.applicable:
        detail = planned.refusal or (
            f"{planned.manager} manages {planned.object_ref}: a patch would be reverted at "
            "its next sync; change it in Git."
        )
        return audit.record(replace(entry, detail=detail))

    checked = dry_run(planned, cluster)
    if not checked.ok:
        logger.info("dry run of %s on %s failed: %s", action, planned.object_ref, checked.message)
        return audit.record(replace(entry, result=DRY_RUN_FAILED, detail=checked.message))
    if not checked.changes:
        detail = f"{planned.object_ref} already has this change; nothing was patched."
        return audit.record(replace(entry, result=UNCHANGED, detail=detail))

    try:
        before = cluster.read(patch.kind, patch.namespace, patch.name)
        after = cluster.patch(patch, dry_run=False)
    except ApplyError as err:
        logger.warning("%s of %s failed after its dry run: %s", action, planned.object_ref, err)
        return audit.record(replace(entry, result=FAILED, detail=str(err)))
    changes = changes_between(before, after)
    logger.info("%s %s by %s: %d value(s) changed", action, planned.object_ref, user, len(changes))
    return audit.record(replace(entry, result=APPLIED, changes=changes))


def undo_fix(entry: AuditEntry) -> Fix:
    """The fix that restores what ``entry`` changed, if each value is still as it left it."""
    tests = [{"op": "test", "path": c.path, "value": c.after} for c in entry.changes if c.is_set]
    restores: list[dict[str, Any]] = []
    for change in entry.changes:
        if not change.was_set:
            restores.append({"op": "remove", "path": change.path})
        elif not change.is_set:
            restores.append({"op": "add", "path": change.path, "value": change.before})
        else:
            restores.append({"op": "replace", "path": change.path, "value": change.before})
    patch = KubePatch(entry.kind, entry.namespace, entry.name, "json", [*tests, *restores])
    return Fix(
        title=f"Undo: {entry.title}",
        language="shell",
        text=kubectl_command(patch) + "\n",
        apply=patch,
    )


UNDO_CONFLICT = (
    " The object may have changed since the fix was applied: an undo restores the old "
    "values only where the fix's values are still in place."
)


def undo(entry: AuditEntry, cluster: Cluster, *, user: str, audit: AuditLog) -> AuditEntry:
    """Restore the values ``entry`` replaced; recorded as an ``undo`` entry."""
    if not entry.undoable:
        raise ValueError(f"audit entry {entry.id} changed nothing that can be undone")
    return apply(
        plan(undo_fix(entry), cluster),
        cluster,
        user=user,
        audit=audit,
        action="undo",
        undoes=entry.id,
    )


# ---------------------------------------------------------------------------
# Offers kept server-side


@dataclass(frozen=True)
class Pending:
    """A fix offered in a thread, waiting for a click."""

    fix: Fix
    cluster: str
    ask: str  # the namespace/service the check was about
    code: str = ""  # the finding's code
    undoes: str = ""  # for an offered undo, the audit entry it reverses

    def to_json(self) -> str:
        return json.dumps(
            {
                "fix": self.fix.to_dict(),
                "cluster": self.cluster,
                "ask": self.ask,
                "code": self.code,
                "undoes": self.undoes,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> Pending:
        data = json.loads(raw)
        return cls(
            fix=Fix.from_dict(data["fix"]),
            cluster=str(data["cluster"]),
            ask=str(data.get("ask", "")),
            code=str(data.get("code", "")),
            undoes=str(data.get("undoes", "")),
        )


# How long an Apply button keeps working.
PENDING_TTL_S = 24 * 3600
_PENDING_ID = re.compile(r"[A-Za-z0-9_-]{8,32}")


def new_id() -> str:
    return secrets.token_urlsafe(9)


class PendingStore(Protocol):
    def put(self, pending: Pending) -> str: ...

    def get(self, pending_id: str) -> Pending | None: ...


class MemoryPendingStore:
    def __init__(self, ttl_s: int = PENDING_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._items: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def put(self, pending: Pending) -> str:
        pending_id = new_id()
        now = time.monotonic()
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if v[0] > now}
            self._items[pending_id] = (now + self.ttl_s, pending.to_json())
        return pending_id

    def get(self, pending_id: str) -> Pending | None:
        with self._lock:
            found = self._items.get(pending_id)
        if found is None or found[0] <= time.monotonic():
            return None
        return Pending.from_json(found[1])


@dataclass
class RedisPendingStore:
    """Offers shared by every replica, so a click may land on any of them."""

    url: str
    ttl_s: int = PENDING_TTL_S
    prefix: str = "eks504:apply:pending:"
    fallback: MemoryPendingStore = field(default_factory=MemoryPendingStore)

    def __post_init__(self) -> None:
        self._client = redis.Redis.from_url(
            self.url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=2.0
        )

    def put(self, pending: Pending) -> str:
        pending_id = new_id()
        try:
            self._client.set(self.prefix + pending_id, pending.to_json(), ex=self.ttl_s)
        except redis.RedisError as err:
            logger.warning("offer kept in this process only: Redis failed (%s)", err)
            return self.fallback.put(pending)
        return pending_id

    def get(self, pending_id: str) -> Pending | None:
        local = self.fallback.get(pending_id)
        if local is not None:
            return local
        try:
            raw = self._client.get(self.prefix + pending_id)
        except redis.RedisError as err:
            logger.warning("could not read offer %s from Redis: %s", pending_id, err)
            return None
        return Pending.from_json(str(raw)) if raw else None


def pending_from_env(env: Mapping[str, str] = os.environ) -> PendingStore:
    url = env.get("REDIS_URL", "").strip()
    return RedisPendingStore(url) if url else MemoryPendingStore()


# ---------------------------------------------------------------------------
# The service a front end uses


@dataclass(frozen=True)
class Offer:
    """What a finding reply shows for a fix that is one patch.

    ``pending_id`` set: an Apply button. Otherwise ``note`` says why there is none, and
    ``git_snippet`` carries the change for Git where a GitOps tool manages the object.
    """

    object_ref: str
    pending_id: str = ""
    note: str = ""
    git_snippet: str = ""


# Finds the cluster a check ran against by the name in its target.
Clusters = Callable[[str], Cluster | None]


@dataclass
class ApplyService:
    policy: ApplyPolicy
    pending: PendingStore
    audit: AuditLog
    clusters: Clusters

    def offer(self, target: Target, finding: Finding, fix: Fix) -> Offer | None:
        """The offer for ``fix`` in a reply, or None: no patch, or nobody may apply."""
        if fix.apply is None or not self.policy.allows_anyone:
            return None
        cluster = self.clusters(target.cluster)
        if cluster is None:
            logger.debug("no Kubernetes connection for cluster %s: no Apply", target.cluster)
            return None
        planned = plan(fix, cluster)
        if planned.manager:
            note = (
                f"{planned.manager} manages {planned.object_ref}: a patch applied here would "
                "be reverted at its next sync. Commit this change to Git instead:"
            )
            return Offer(planned.object_ref, note=note, git_snippet=planned.git_snippet)
        if planned.refusal:
            return Offer(planned.object_ref, note=f"No Apply button: {planned.refusal}")
        pending = Pending(fix=fix, cluster=cluster.name, ask=target.ask, code=finding.code)
        return Offer(planned.object_ref, pending_id=self.pending.put(pending))

    def offer_undo(self, entry: AuditEntry) -> tuple[str, Pending]:
        """An offer to undo ``entry``, to confirm like any other fix, and its id."""
        pending = Pending(fix=undo_fix(entry), cluster=entry.cluster, ask="", undoes=entry.id)
        return self.pending.put(pending), pending

    def allows(self, user: str, members: GroupMembers) -> bool:
        return self.policy.allows(user, members)

    def lookup(self, pending_id: str) -> Pending | None:
        if not _PENDING_ID.fullmatch(pending_id):
            return None
        return self.pending.get(pending_id)

    def plan(self, pending: Pending) -> Plan | None:
        cluster = self.clusters(pending.cluster)
        return None if cluster is None else plan(pending.fix, cluster)

    def record_refusal(self, pending: Pending, user: str, why: str) -> AuditEntry:
        patch = pending.fix.apply
        assert patch is not None
        return self.audit.record(
            AuditEntry(
                action="undo" if pending.undoes else "apply",
                user=user,
                cluster=pending.cluster,
                kind=canonical_kind(patch.kind),
                namespace=patch.namespace,
                name=patch.name,
                title=pending.fix.title,
                patch_type=patch.patch_type,
                patch=patch.patch,
                result=REFUSED,
                detail=why,
                undoes=pending.undoes,
            )
        )

    def run(self, pending: Pending, user: str) -> AuditEntry:
        """Apply (or undo) a confirmed offer; every outcome is audited."""
        cluster = self.clusters(pending.cluster)
        if cluster is None:
            why = f"No Kubernetes connection for cluster {pending.cluster}."
            return self.record_refusal(pending, user, why)
        return apply(
            plan(pending.fix, cluster),
            cluster,
            user=user,
            audit=self.audit,
            action="undo" if pending.undoes else "apply",
            undoes=pending.undoes,
        )
