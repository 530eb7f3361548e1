"""Judges manifests offline: what the annotation checks can tell from the objects alone.

Each Service, and each Ingress no linted Service is the backend of, becomes one small
:class:`~checks.snapshot.Snapshot` with the objects around it (the Ingresses routing to it
and their group members, the workloads and ConfigMaps of its namespace, the AWS Load
Balancer Controller's Deployment) and a planned load balancer whose type comes from the
manifests: an ALB for an Ingress of an ALB class, an NLB for ``aws-load-balancer-type:
nlb|external`` or ``loadBalancerClass: service.k8s.aws/nlb``, a Classic LB otherwise. No
AWS account is read, so only checks that need none run.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from checks import kube
from checks.annotations import roles
from checks.annotations.kb import format_version, knowledge_base
from checks.models import Finding
from checks.registry import Check
from checks.rules import (
    annotation_malformed,
    annotation_out_of_range,
    annotation_unknown,
    annotation_wrong_target,
    idle_timeout_ask_problems,
    ingress_group_conflict,
    proxy_protocol_mismatch,
)
from checks.snapshot import Gap, KubeObject, LbType, Listener, LoadBalancer, Snapshot

logger = logging.getLogger(__name__)

# The checks manifests alone can judge.
LINT_CHECKS: tuple[Check, ...] = (
    annotation_unknown.CHECK,
    annotation_malformed.CHECK,
    annotation_out_of_range.CHECK,
    annotation_wrong_target.CHECK,
    ingress_group_conflict.CHECK,
    proxy_protocol_mismatch.CHECK,
    idle_timeout_ask_problems.CHECK,
)
OLD_INGRESS_APIS = ("extensions/v1beta1", "networking.k8s.io/v1beta1")
NAMESPACED_DEFAULT = "default"
CLUSTER_SCOPED = (
    "Namespace",
    "Node",
    "IngressClass",
    "IngressClassParams",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
_TEMPLATE = re.compile(r"\{\{.*?\}\}|\$\{[^}]*\}")

Document = tuple[str, int, dict[str, Any]]


@dataclass(frozen=True)
class LintFinding:
    source: str
    line: int
    finding: Finding

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.source, "line": self.line, **self.finding.to_dict()}


@dataclass(frozen=True)
class LintNote:
    """Something worth saying about an input that is not a finding."""

    source: str
    line: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.source, "line": self.line, "message": self.message}


@dataclass
class LintResult:
    findings: list[LintFinding] = field(default_factory=list)
    notes: list[LintNote] = field(default_factory=list)


def is_kubernetes(obj: object) -> bool:
    return isinstance(obj, dict) and bool(obj.get("apiVersion")) and bool(obj.get("kind"))


def expand(docs: list[Document]) -> tuple[list[Document], list[LintNote]]:
    """Kubernetes objects out of documents: ``kind: List`` items and a scenario file's
    ``cluster`` objects are unpacked (at their parent's line); anything else that is not a
    Kubernetes object becomes a note."""
    objects: list[Document] = []
    notes: list[LintNote] = []
    for source, line, obj in docs:
        if (
            isinstance(obj, dict)
            and str(obj.get("kind", "")).endswith("List")
            and isinstance(obj.get("items"), list)
        ):
            inner = [(source, line, i) for i in obj["items"]]
            more, more_notes = expand(inner)
            objects.extend(more)
            notes.extend(more_notes)
        elif is_scenario(obj):
            more, more_notes = expand([(source, line, i) for i in obj["cluster"]])
            objects.extend(more)
            notes.extend(more_notes)
        elif is_kubernetes(obj):
            objects.append((source, line, obj))
        else:
            notes.append(
                LintNote(source, line, "not a Kubernetes object (no apiVersion/kind): skipped")
            )
    return objects, notes


def _with_namespace(obj: KubeObject) -> KubeObject:
    if obj.get("kind") in CLUSTER_SCOPED or kube.namespace(obj):
        return obj
    obj = copy.deepcopy(obj)
    obj.setdefault("metadata", {})
    if not isinstance(obj["metadata"], dict):
        obj["metadata"] = {}
    obj["metadata"]["namespace"] = NAMESPACED_DEFAULT
    return obj


def _object_notes(source: str, line: int, obj: KubeObject) -> list[LintNote]:
    notes: list[LintNote] = []
    ref = kube.ref(obj)
    if obj.get("kind") == "Ingress" and obj.get("apiVersion") in OLD_INGRESS_APIS:
        notes.append(
            LintNote(
                source,
                line,
                f"{ref} uses {obj.get('apiVersion')}, which Kubernetes 1.22 and later no longer "
                "serve; move it to networking.k8s.io/v1 (its annotations were judged anyway)",
            )
        )
    found = _TEMPLATE.search(repr(obj))
    if found:
        notes.append(
            LintNote(source, line, f"{ref} holds the unrendered template text {found.group(0)}")
        )
    return notes


def _pseudo_lb(name: str, lb_type: LbType, serves: list[str], ports: list[Any]) -> LoadBalancer:
    listeners = tuple(
        Listener(port=int(p["port"]), protocol=str(p.get("protocol", "TCP")))
        for p in ports
        if isinstance(p, dict) and str(p.get("port", "")).isdigit()
    )
    return LoadBalancer(
        name=name,
        type=lb_type,
        dns_name="",
        scheme="",
        vpc_id="",
        subnet_ids=(),
        security_group_ids=(),
        attributes={},
        listeners=listeners,
        serves=", ".join(serves),
    )


class _World:
    """The linted objects, indexed for building snapshots."""

    def __init__(self, objects: list[KubeObject]) -> None:
        self.objects = objects
        self.ingresses = self.of("Ingress")
        self.ingress_classes = self.of("IngressClass")
        self.events = self.of("Event")
        self.controllers = [
            o
            for o in self.objects
            if o.get("kind") in WORKLOAD_KINDS and "aws-load-balancer-controller" in repr(o)
        ]

    def of(self, kind: str) -> list[KubeObject]:
        return [o for o in self.objects if o.get("kind") == kind]

    def group(self, ingresses: list[KubeObject]) -> list[KubeObject]:
        names = {kube.annotations(i).get(roles.GROUP_KEY, "").strip() for i in ingresses} - {""}
        members = list(ingresses)
        for other in self.ingresses:
            if (
                other not in members
                and kube.annotations(other).get(roles.GROUP_KEY, "").strip() in names
            ):
                members.append(other)
        return members

    def around(
        self, namespace: str, selector: dict[str, str]
    ) -> tuple[list[KubeObject], list[KubeObject]]:
        pods = [
            p
            for p in self.of("Pod")
            if kube.namespace(p) == namespace and kube.selector_matches(selector, kube.labels(p))
        ]
        workloads = [
            w
            for w in self.objects
            if w.get("kind") in WORKLOAD_KINDS
            and kube.namespace(w) == namespace
            and kube.selector_matches(selector, kube.labels(kube.pod_template(w)))
        ]
        return pods, workloads + [c for c in self.controllers if c not in workloads]

    def configmaps(self, namespace: str) -> dict[str, KubeObject]:
        return {kube.name(c): c for c in self.of("ConfigMap") if kube.namespace(c) == namespace}


def _alb_lbs(world: _World, ingresses: list[KubeObject]) -> list[LoadBalancer]:
    lbs: dict[str, list[str]] = {}
    for ingress in ingresses:
        if roles.is_alb_ingress(ingress, world.ingress_classes) is False:
            continue
        lbs.setdefault(roles.group_name(ingress), []).append(kube.ref(ingress))
    return [_pseudo_lb(f"(ALB of {group})", "application", refs, []) for group, refs in lbs.items()]


def snapshots(objects: list[KubeObject]) -> list[Snapshot]:
    world = _World(objects)
    offline = Gap(roles.OFFLINE_AREA, "aws", "judging manifests: no AWS account was read")
    built: list[Snapshot] = []
    covered: list[KubeObject] = []
    for service in world.of("Service"):
        namespace = kube.namespace(service)
        routing = [i for i in world.ingresses if roles.routes_to(i, service)]
        ingresses = world.group(routing)
        covered.extend(ingresses)
        selector = dict(kube.spec(service).get("selector") or {})
        pods, workloads = world.around(namespace, selector)
        snapshot = Snapshot(
            namespace=namespace,
            service_name=kube.name(service),
            service=service,
            ingresses=ingresses,
            pods=pods,
            workloads=workloads,
            configmaps=world.configmaps(namespace),
            ingress_classes=world.ingress_classes,
            events=world.events,
            gaps=[offline],
        )
        own = roles.service_lb(snapshot, service)
        if own is not None and own.controller != "other":
            snapshot.load_balancers.append(
                _pseudo_lb(
                    f"(load balancer of {kube.ref(service)})",
                    "classic" if own.type == "classic" else "network",
                    [kube.ref(service)],
                    list(kube.spec(service).get("ports") or []),
                )
            )
        snapshot.load_balancers.extend(_alb_lbs(world, ingresses))
        built.append(snapshot)
    for ingress in world.ingresses:
        if ingress in covered:
            continue
        members = world.group([ingress])
        covered.extend(members)
        built.append(
            Snapshot(
                namespace=kube.namespace(ingress),
                service_name="",
                ingresses=members,
                workloads=list(world.controllers),
                ingress_classes=world.ingress_classes,
                events=world.events,
                load_balancers=_alb_lbs(world, members),
                gaps=[offline],
            )
        )
    return built


def _version_notes(snapshot: Snapshot, where: dict[str, tuple[str, int]]) -> list[LintNote]:
    """Keys that need a newer controller than v2.0.0 when the release cannot be read."""
    if roles.controller_version(snapshot) is not None:
        return []
    kb = knowledge_base()
    notes: list[LintNote] = []
    for obj in ([snapshot.service] if snapshot.service else []) + snapshot.ingresses:
        for key in kube.annotations(obj):
            spec = kb.lookup(key)
            if spec is None or spec.since is None or spec.since <= (2, 0, 0) or not spec.value.idle:
                continue
            source, line = where.get(kube.ref(obj), ("", 0))
            notes.append(
                LintNote(
                    source,
                    line,
                    f"{key} on {kube.ref(obj)} needs AWS Load Balancer Controller "
                    f"{format_version(spec.since)} or later; no controller Deployment was "
                    "among the linted files, so the release could not be checked",
                )
            )
    return notes


def lint(docs: list[Document]) -> LintResult:
    objects, notes = expand(docs)
    where: dict[str, tuple[str, int]] = {}
    normalised: list[KubeObject] = []
    for source, line, obj in objects:
        obj = _with_namespace(obj)
        where.setdefault(kube.ref(obj), (source, line))
        notes.extend(_object_notes(source, line, obj))
        normalised.append(obj)
    result = LintResult(notes=notes)
    seen: set[tuple[str, str, str, str]] = set()
    for snapshot in snapshots(normalised):
        by_lb = {
            f"{lb.type} load balancer {lb.name}": next(iter(roles.refs_of(lb)), "")
            for lb in snapshot.load_balancers
        }
        for check in LINT_CHECKS:
            for finding in check.judge(snapshot):
                if not finding.is_problem:
                    continue
                ident = (finding.code, finding.status.value, finding.resource, finding.summary)
                if ident in seen:
                    continue
                seen.add(ident)
                ref = by_lb.get(finding.resource, finding.resource)
                source, line = where.get(ref, (docs[0][0] if docs else "", 0))
                result.findings.append(LintFinding(source, line, finding))
        for note in _version_notes(snapshot, where):
            if note not in result.notes:
                result.notes.append(note)
    result.findings.sort(key=lambda f: (f.source, f.line, f.finding.code))
    logger.info(
        "linted %d object(s): %d finding(s), %d note(s)",
        len(normalised),
        len(result.findings),
        len(result.notes),
    )
    return result


def is_scenario(obj: object) -> bool:
    return isinstance(obj, dict) and not obj.get("kind") and isinstance(obj.get("cluster"), list)


def lint_worlds(worlds: list[list[Document]]) -> LintResult:
    """Each list of documents judged on its own (a scenario file is its own cluster)."""
    merged = LintResult()
    for docs in worlds:
        result = lint(docs)
        merged.findings.extend(result.findings)
        merged.notes.extend(result.notes)
    merged.findings.sort(key=lambda f: (f.source, f.line, f.finding.code))
    return merged


def lint_documents(docs: list[Document]) -> list[LintFinding]:
    """Findings (fail or warn) for ``(source file, line, object)`` documents. Manifests are
    judged together, since an Ingress and its Service may sit in different files; a scenario
    mapping is judged on its own."""
    shared = [d for d in docs if not is_scenario(d[2])]
    worlds = [shared] + [[d] for d in docs if is_scenario(d[2])]
    return lint_worlds(worlds).findings
