"""Judges manifests offline: what the annotation checks can tell from the objects alone.

Each Service, and each Ingress no linted Service is the backend of, becomes one small
:class:`~checks.snapshot.Snapshot` with the objects around it (the Ingresses routing to it
and their group members, the workloads and ConfigMaps of its namespace, the AWS Load
Balancer Controller's Deployment) and a planned load balancer whose type comes from the
manifests: an ALB for an Ingress of an ALB class, an NLB for ``aws-load-balancer-type:
nlb|external`` or ``loadBalancerClass: service.k8s.aws/nlb``, a Classic LB otherwise. No
AWS account is read, so only checks that need none run.

Before that, every object's fields are held against the types Kubernetes requires where
the checks read them (:data:`SHAPES`), and its name, namespace and ports against what the
API server accepts (:data:`VALUES`): an object the API server would reject is not judged
but reported in an invalid note, and annotations that are not a mapping of strings are
ANNOTATION_MALFORMED findings. :func:`read_yaml` refuses, before building anything, YAML
that would exhaust memory or the stack (alias bombs, deep nesting), and numbers too long to
convert (see :mod:`checks.numbers`); it refuses a key given twice in one mapping, which
:func:`read_yaml_documents` reports instead.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from checks import kube, names, numbers
from checks.annotations import roles
from checks.annotations.kb import format_version, knowledge_base
from checks.annotations_idle import (
    ALB_IDLE_KEY,
    asked_idle_timeouts,
    class_params_idle_timeout,
    served_objects,
)
from checks.models import Finding, Fix, Status
from checks.registry import Check
from checks.rules import (
    annotation_malformed,
    annotation_out_of_range,
    annotation_unknown,
    annotation_wrong_target,
    app_keepalive,
    idle_timeout_ask_problems,
    idle_timeout_not_applied,
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
    idle_timeout_not_applied.CHECK,
    app_keepalive.CHECK,
)
CLASSIC_BACKEND_PROTOCOL_KEY = "service.beta.kubernetes.io/aws-load-balancer-backend-protocol"
CLASSIC_SSL_PORTS_KEY = "service.beta.kubernetes.io/aws-load-balancer-ssl-ports"
CLASSIC_CERT_KEY = "service.beta.kubernetes.io/aws-load-balancer-ssl-cert"
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
_HELM_ACTION = re.compile(r"\{\{.*?\}\}")
# Values longer than this are shortened wherever a finding or note repeats them: a
# megabyte pasted into an annotation must not come back twice in every report.
ECHO_LIMIT = 200
# No line of a finding or note grows beyond this, whatever it quotes.
LINE_LIMIT = 1000
ELLIPSIS = "\u2026"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9./_-]*")

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
    """Something worth saying about an input that is not a finding. ``invalid`` marks an
    object the API server would reject (or one that could not be judged): the run cannot
    pass while one is left."""

    source: str
    line: int
    message: str
    invalid: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "line": self.line,
            "message": self.message,
            "invalid": self.invalid,
        }


@dataclass
class LintResult:
    findings: list[LintFinding] = field(default_factory=list)
    notes: list[LintNote] = field(default_factory=list)


def cap(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


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
            LintNote(
                source, line, f"{ref} holds the unrendered template text {cap(found.group(0))}"
            )
        )
    return notes


# ---- shapes ------------------------------------------------------------------------------
# The type of each field the checks read, as the Kubernetes API schema requires it: a field
# of another type is an object kubectl would reject, and a check reading it would fail.

MAPPING = "a mapping"
LIST = "a list"
STRING = "a string"
INTEGER = "an integer"
BOOLEAN = "true or false"
STRING_MAP = "a mapping of strings"
STRING_LIST = "a list of strings"
INT_OR_STRING = "a number or a name"
IP_ADDRESS = "an IP address"

Rule = tuple[str, str]


def _container_rules(prefix: str) -> tuple[Rule, ...]:
    each = f"{prefix}[]"
    return (
        (prefix, LIST),
        (each, MAPPING),
        (f"{each}.name", STRING),
        (f"{each}.image", STRING),
        (f"{each}.command", STRING_LIST),
        (f"{each}.args", STRING_LIST),
        (f"{each}.ports", LIST),
        (f"{each}.ports[]", MAPPING),
        (f"{each}.ports[].containerPort", INTEGER),
        (f"{each}.ports[].name", STRING),
        (f"{each}.env", LIST),
        (f"{each}.env[]", MAPPING),
        (f"{each}.env[].name", STRING),
        (f"{each}.env[].value", STRING),
        (f"{each}.env[].valueFrom", MAPPING),
        (f"{each}.env[].valueFrom.configMapKeyRef", MAPPING),
        (f"{each}.env[].valueFrom.configMapKeyRef.name", STRING),
        (f"{each}.env[].valueFrom.configMapKeyRef.key", STRING),
        (f"{each}.envFrom", LIST),
        (f"{each}.envFrom[]", MAPPING),
        (f"{each}.envFrom[].prefix", STRING),
        (f"{each}.envFrom[].configMapRef", MAPPING),
        (f"{each}.envFrom[].configMapRef.name", STRING),
        (f"{each}.workingDir", STRING),
        (f"{each}.lifecycle", MAPPING),
        (f"{each}.lifecycle.preStop", MAPPING),
        (f"{each}.lifecycle.preStop.exec", MAPPING),
        (f"{each}.lifecycle.preStop.exec.command", STRING_LIST),
        (f"{each}.lifecycle.preStop.sleep", MAPPING),
        (f"{each}.lifecycle.preStop.sleep.seconds", INTEGER),
        (f"{each}.readinessProbe", MAPPING),
        (f"{each}.livenessProbe", MAPPING),
        (f"{each}.volumeMounts", LIST),
        (f"{each}.volumeMounts[]", MAPPING),
        (f"{each}.volumeMounts[].name", STRING),
        (f"{each}.volumeMounts[].mountPath", STRING),
        (f"{each}.volumeMounts[].subPath", STRING),
    )


def _configmap_source_rules(prefix: str) -> tuple[Rule, ...]:
    """A ConfigMap volume, or a ConfigMap source of a projected volume."""
    return (
        (prefix, MAPPING),
        (f"{prefix}.name", STRING),
        (f"{prefix}.items", LIST),
        (f"{prefix}.items[]", MAPPING),
        (f"{prefix}.items[].key", STRING),
        (f"{prefix}.items[].path", STRING),
    )


def _pod_spec_rules(prefix: str) -> tuple[Rule, ...]:
    return (
        *_container_rules(f"{prefix}.containers"),
        *_container_rules(f"{prefix}.initContainers"),
        (f"{prefix}.nodeName", STRING),
        (f"{prefix}.hostNetwork", BOOLEAN),
        (f"{prefix}.terminationGracePeriodSeconds", INTEGER),
        (f"{prefix}.volumes", LIST),
        (f"{prefix}.volumes[]", MAPPING),
        (f"{prefix}.volumes[].name", STRING),
        *_configmap_source_rules(f"{prefix}.volumes[].configMap"),
        (f"{prefix}.volumes[].projected", MAPPING),
        (f"{prefix}.volumes[].projected.sources", LIST),
        (f"{prefix}.volumes[].projected.sources[]", MAPPING),
        *_configmap_source_rules(f"{prefix}.volumes[].projected.sources[].configMap"),
    )


def _backend_rules(prefix: str) -> tuple[Rule, ...]:
    return (
        (prefix, MAPPING),
        (f"{prefix}.service", MAPPING),
        (f"{prefix}.service.name", STRING),
        (f"{prefix}.service.port", MAPPING),
        (f"{prefix}.service.port.number", INTEGER),
        (f"{prefix}.service.port.name", STRING),
        (f"{prefix}.serviceName", STRING),
        (f"{prefix}.servicePort", INT_OR_STRING),
    )


_LB_STATUS_RULES: tuple[Rule, ...] = (
    ("status.loadBalancer", MAPPING),
    ("status.loadBalancer.ingress", LIST),
    ("status.loadBalancer.ingress[]", MAPPING),
    ("status.loadBalancer.ingress[].hostname", STRING),
    ("status.loadBalancer.ingress[].ip", STRING),
)
_COMMON_RULES: tuple[Rule, ...] = (
    ("apiVersion", STRING),
    ("kind", STRING),
    ("metadata", MAPPING),
    ("metadata.name", STRING),
    ("metadata.namespace", STRING),
    ("metadata.labels", STRING_MAP),
    ("spec", MAPPING),
    ("status", MAPPING),
)
_WORKLOAD_RULES: tuple[Rule, ...] = (
    ("spec.replicas", INTEGER),
    ("spec.selector", MAPPING),
    ("spec.selector.matchLabels", STRING_MAP),
    ("spec.template", MAPPING),
    ("spec.template.metadata", MAPPING),
    ("spec.template.metadata.labels", STRING_MAP),
    ("spec.template.metadata.annotations", STRING_MAP),
    ("spec.template.spec", MAPPING),
    *_pod_spec_rules("spec.template.spec"),
)
SHAPES: dict[str, tuple[Rule, ...]] = {
    "Service": (
        ("spec.type", STRING),
        ("spec.loadBalancerClass", STRING),
        ("spec.externalTrafficPolicy", STRING),
        ("spec.selector", STRING_MAP),
        ("spec.ports", LIST),
        ("spec.ports[]", MAPPING),
        ("spec.ports[].name", STRING),
        ("spec.ports[].protocol", STRING),
        ("spec.ports[].port", INTEGER),
        ("spec.ports[].targetPort", INT_OR_STRING),
        ("spec.ports[].nodePort", INTEGER),
        *_LB_STATUS_RULES,
    ),
    "Ingress": (
        ("spec.ingressClassName", STRING),
        *_backend_rules("spec.defaultBackend"),
        *_backend_rules("spec.backend"),
        ("spec.rules", LIST),
        ("spec.rules[]", MAPPING),
        ("spec.rules[].host", STRING),
        ("spec.rules[].http", MAPPING),
        ("spec.rules[].http.paths", LIST),
        ("spec.rules[].http.paths[]", MAPPING),
        ("spec.rules[].http.paths[].path", STRING),
        *_backend_rules("spec.rules[].http.paths[].backend"),
        ("spec.tls", LIST),
        ("spec.tls[]", MAPPING),
        *_LB_STATUS_RULES,
    ),
    "IngressClass": (("spec.controller", STRING), ("spec.parameters", MAPPING)),
    "Pod": (
        *_pod_spec_rules("spec"),
        ("status.phase", STRING),
        ("status.podIP", IP_ADDRESS),
        ("status.hostIP", IP_ADDRESS),
        ("status.conditions", LIST),
        ("status.conditions[]", MAPPING),
        ("status.conditions[].type", STRING),
        ("status.conditions[].status", STRING),
        ("status.containerStatuses", LIST),
        ("status.containerStatuses[]", MAPPING),
    ),
    "ConfigMap": (("data", STRING_MAP), ("binaryData", STRING_MAP)),
    "Node": (
        ("spec.providerID", STRING),
        ("status.addresses", LIST),
        ("status.addresses[]", MAPPING),
        ("status.conditions", LIST),
        ("status.conditions[]", MAPPING),
    ),
    "Event": (
        ("involvedObject", MAPPING),
        ("involvedObject.kind", STRING),
        ("involvedObject.namespace", STRING),
        ("involvedObject.name", STRING),
        ("type", STRING),
        ("reason", STRING),
        ("message", STRING),
    ),
    "EndpointSlice": (
        ("endpoints", LIST),
        ("endpoints[]", MAPPING),
        ("endpoints[].addresses", STRING_LIST),
        ("endpoints[].conditions", MAPPING),
        ("endpoints[].targetRef", MAPPING),
        ("ports", LIST),
        ("ports[]", MAPPING),
        ("ports[].port", INTEGER),
        ("ports[].name", STRING),
    ),
    "TargetGroupBinding": (
        ("spec.targetGroupARN", STRING),
        ("spec.targetGroupName", STRING),
        ("spec.targetType", STRING),
        ("spec.serviceRef", MAPPING),
        ("spec.serviceRef.name", STRING),
        ("spec.serviceRef.port", INT_OR_STRING),
    ),
    "SecurityGroupPolicy": (
        ("spec.podSelector", MAPPING),
        ("spec.podSelector.matchLabels", STRING_MAP),
        ("spec.securityGroups", MAPPING),
        ("spec.securityGroups.groupIds", STRING_LIST),
    ),
    **{kind: _WORKLOAD_RULES for kind in WORKLOAD_KINDS},
}


@dataclass(frozen=True)
class ShapeProblem:
    """A field of the wrong type: ``path`` as in ``spec.ports[0].port``; ``holder`` is the
    mapping that holds it (whose line a parser may know)."""

    path: str
    message: str
    holder: object


def _is(value: object, expected: str) -> bool:
    if expected == MAPPING:
        return isinstance(value, dict)
    if expected == LIST:
        return isinstance(value, list)
    if expected == STRING:
        return isinstance(value, str)
    if expected == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == BOOLEAN:
        return isinstance(value, bool)
    if expected == INT_OR_STRING:
        return isinstance(value, str | int) and not isinstance(value, bool)
    if expected == STRING_MAP:
        return isinstance(value, dict) and all(
            isinstance(v, str) or v is None for v in value.values()
        )
    if expected == STRING_LIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if expected == IP_ADDRESS:
        # Empty is what the API server holds before an address is assigned.
        return isinstance(value, str) and (value == "" or kube.is_ip_address(value))
    raise ValueError(f"unknown shape {expected!r}")


def shown(value: object, limit: int = 60) -> str:
    """A short description of a value for a message: its text, or what kind of thing it is."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(cap(value, limit))
    return cap(str(value), limit)


def _describe(value: object, expected: str) -> str:
    if expected == STRING_MAP and isinstance(value, dict):
        key, bad = next((k, v) for k, v in value.items() if not (isinstance(v, str) or v is None))
        return f"{key!s} is {shown(bad)}"
    if expected == STRING_LIST and isinstance(value, list):
        index, bad = next((i, v) for i, v in enumerate(value) if not isinstance(v, str))
        return f"item {index} is {shown(bad)}"
    return shown(value)


def _values_at(
    obj: dict[str, Any], parts: list[str]
) -> Iterator[tuple[str, object, dict[str, Any]]]:
    """(path, value, holding mapping) for each value at ``parts``, through every list item
    (``name[]``); unset and null fields are skipped, and so are parents of the wrong type
    (their own rule reports them)."""
    frontier: list[tuple[str, object, dict[str, Any]]] = [("", obj, obj)]
    for part in parts:
        key, each = (part[:-2], True) if part.endswith("[]") else (part, False)
        found: list[tuple[str, object, dict[str, Any]]] = []
        for path, value, _ in frontier:
            if not isinstance(value, dict) or value.get(key) is None:
                continue
            here = f"{path}.{key}" if path else key
            child = value[key]
            if not each:
                found.append((here, child, value))
            elif isinstance(child, list):
                found.extend((f"{here}[{i}]", item, value) for i, item in enumerate(child))
        frontier = found
    yield from frontier


# ---- values ------------------------------------------------------------------------------
# Beyond their type, the API server checks the values of a few fields: names are DNS names,
# ports are in range. A value rule passes a value of the wrong type: its type rule says so.

ValueRule = tuple[str, str, Callable[[Any], bool]]

PORT_RANGE = "a port number 1-65535"
NODE_PORT_RANGE = "a node port 30000-32767 (the range EKS allocates them from)"


def _port(value: Any) -> bool:
    return not _is(value, INTEGER) or 1 <= value <= 65535


def _node_port(value: Any) -> bool:
    # 0 is Go's zero value: unset, the API server allocates one.
    return not _is(value, INTEGER) or value == 0 or 30000 <= value <= 32767


def _named_port(value: Any) -> bool:
    return isinstance(value, str) or _port(value)


def _text_rule(test: Callable[[str], bool]) -> Callable[[Any], bool]:
    return lambda value: not isinstance(value, str) or test(value)


def _container_ports(prefix: str) -> tuple[ValueRule, ...]:
    return tuple(
        (f"{prefix}.{group}[].ports[].containerPort", PORT_RANGE, _port)
        for group in ("containers", "initContainers")
    )


def _backend_ports(prefix: str) -> tuple[ValueRule, ...]:
    return (
        (f"{prefix}.service.port.number", PORT_RANGE, _port),
        (f"{prefix}.servicePort", f"{PORT_RANGE} or a port name", _named_port),
    )


_SUBDOMAIN_NAME: ValueRule = ("metadata.name", names.SUBDOMAIN_RULE, _text_rule(names.is_subdomain))
_COMMON_VALUES: tuple[ValueRule, ...] = (
    ("metadata.namespace", names.NAMESPACE_NAME_RULE, _text_rule(names.is_label)),
)
VALUES: dict[str, tuple[ValueRule, ...]] = {
    # Every kind whose shape lint knows has a DNS subdomain for a name, unless said below.
    **{kind: (_SUBDOMAIN_NAME,) for kind in SHAPES},
    "Service": (
        ("metadata.name", names.SERVICE_NAME_RULE, _text_rule(names.is_service_name)),
        ("spec.ports[].port", PORT_RANGE, _port),
        ("spec.ports[].targetPort", f"{PORT_RANGE} or a port name", _named_port),
        ("spec.ports[].nodePort", NODE_PORT_RANGE, _node_port),
    ),
    "Namespace": (("metadata.name", names.NAMESPACE_NAME_RULE, _text_rule(names.is_label)),),
    "Ingress": (
        _SUBDOMAIN_NAME,
        *_backend_ports("spec.defaultBackend"),
        *_backend_ports("spec.backend"),
        *_backend_ports("spec.rules[].http.paths[].backend"),
    ),
    "Pod": (_SUBDOMAIN_NAME, *_container_ports("spec")),
    "TargetGroupBinding": (
        _SUBDOMAIN_NAME,
        ("spec.serviceRef.port", f"{PORT_RANGE} or a port name", _named_port),
    ),
    **{kind: (_SUBDOMAIN_NAME, *_container_ports("spec.template.spec")) for kind in WORKLOAD_KINDS},
}
# Kinds whose objects the API server refuses without a name (or a generateName).
NAMED_KINDS = frozenset(VALUES)


def _value_problems(obj: dict[str, Any], kind: str) -> list[ShapeProblem]:
    problems: list[ShapeProblem] = []
    meta = obj.get("metadata")
    if kind in NAMED_KINDS and (meta is None or isinstance(meta, dict)):
        given = meta or {}
        if given.get("name") is None and not given.get("generateName"):
            holder = meta if meta is not None else obj
            problems.append(ShapeProblem("metadata.name", "metadata.name is missing", holder))
    for path, rule, ok in _COMMON_VALUES + VALUES.get(kind, ()):
        for where, value, holder in _values_at(obj, path.split(".")):
            if not ok(value):
                problems.append(
                    ShapeProblem(where, f"{where} must be {rule}, not {shown(value)}", holder)
                )
    return problems


def shape_problems(obj: dict[str, Any]) -> list[ShapeProblem]:
    """Fields of ``obj`` whose type is not the one Kubernetes requires and the checks read,
    and values the API server refuses (:data:`VALUES`): names, ports, a missing name."""
    kind = str(obj.get("kind", ""))
    rules = _COMMON_RULES + SHAPES.get(kind, ())
    if kind.endswith("List"):
        # A List whose items are a list has been unpacked; one that reaches here is broken.
        rules += (("items", LIST),)
    problems: list[ShapeProblem] = []
    for path, expected in rules:
        for where, value, holder in _values_at(obj, path.split(".")):
            if value is None and not path.endswith("[]"):
                continue
            if not _is(value, expected):
                problems.append(
                    ShapeProblem(
                        where,
                        f"{where} must be {expected}, not {_describe(value, expected)}",
                        holder,
                    )
                )
    return problems + _value_problems(obj, kind)


def label(obj: Mapping[str, Any]) -> str:
    """``Kind namespace/name`` as a person names an object, from whatever its metadata holds."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    kind = obj.get("kind")
    kind = cap(kind, 60) if isinstance(kind, str) and kind else "object"
    name = cap(meta["name"], 60) if isinstance(meta.get("name"), str) else ""
    namespace = cap(meta["namespace"], 60) if isinstance(meta.get("namespace"), str) else ""
    if not name:
        return f"{kind} (no name)"
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _quote_fix(key: str, value: object) -> Fix:
    text = "true" if value is True else "false" if value is False else str(value)
    shown_key = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)
    return Fix(
        "Quote the value: annotation values are strings",
        "yaml",
        f"metadata:\n  annotations:\n    {shown_key}: {json.dumps(text)}\n",
    )


def _kind_of(value: object) -> str:
    if isinstance(value, dict | list):
        return shown(value)
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, datetime.date):
        return "a date"
    return f"a {type(value).__name__}"


def annotation_problems(
    obj: KubeObject, subject: str = ""
) -> tuple[dict[str, str] | None, list[Finding]]:
    """The annotations as the checks may read them (None when they are fine as written)
    and an ANNOTATION_MALFORMED finding for each thing the API server would refuse: a list
    instead of a mapping, a value that is not a string. ``subject`` names the object in
    the summaries (its ``kind/namespace/name`` by default)."""
    meta = obj.get("metadata")
    raw = meta.get("annotations") if isinstance(meta, dict) else None
    if raw is None:
        return None, []
    ref = kube.ref(obj)
    subject = subject or ref
    if not isinstance(raw, dict):
        finding = Finding(
            annotation_malformed.CODE,
            Status.FAIL,
            annotation_malformed.SEVERITY,
            f"{subject} has metadata.annotations as {shown(raw)}: Kubernetes takes a mapping of "
            'key: "value", so the API server rejects the object and no annotation applies.',
            ref,
            (f"metadata.annotations: {cap(repr(raw))}",),
        )
        return {}, [finding]
    findings: list[Finding] = []
    usable: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            usable[str(key)] = value
            continue
        if value is None:
            usable[str(key)] = ""
            continue
        kind = _kind_of(value)
        scalar = not isinstance(value, dict | list)
        findings.append(
            Finding(
                annotation_malformed.CODE,
                Status.FAIL,
                annotation_malformed.SEVERITY,
                f"{subject} has the annotation {cap(str(key))} with {kind} as its value "
                f"({shown(value)}): annotation values are strings, so the API server rejects "
                "the object." + (" Quote the value." if scalar else ""),
                ref,
                (f"annotation {cap(str(key))}: {shown(value)} ({kind}, not a string)",),
                (_quote_fix(str(key), value),) if scalar else (),
            )
        )
    return (usable if findings else None), findings


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


def _classic_listener(service: KubeObject, port: Any) -> Any:
    """The Service port with the protocol of the listener the in-tree controller makes for it:
    with a certificate on the port, HTTPS for an http or https backend and SSL otherwise;
    without one, HTTP only for an http backend."""
    if not isinstance(port, dict):
        return port
    notes = kube.annotations(service)
    backend = notes.get(CLASSIC_BACKEND_PROTOCOL_KEY, "").strip().lower()
    ssl_ports = [p.strip() for p in notes.get(CLASSIC_SSL_PORTS_KEY, "*").split(",")]
    certified = bool(notes.get(CLASSIC_CERT_KEY, "").strip()) and (
        "*" in ssl_ports or str(port.get("port")) in ssl_ports or port.get("name") in ssl_ports
    )
    if certified:
        protocol = "HTTPS" if backend in ("http", "https") else "SSL"
    else:
        protocol = "HTTP" if backend == "http" else "TCP"
    return {**port, "protocol": protocol}


def _asked_idle(snapshot: Snapshot, lb: LoadBalancer) -> LoadBalancer:
    """An ALB as its manifests configure it: the idle timeout they ask for (IngressClassParams
    first, as the controller applies them), else none, which the checks read as AWS's
    default."""
    if lb.type != "application":
        return lb
    objects = served_objects(lb, snapshot.service, snapshot.ingresses)
    asked = [a.seconds for a in asked_idle_timeouts(lb, objects) if a.seconds is not None]
    for obj in objects:
        params = class_params_idle_timeout(
            obj, snapshot.ingress_classes, snapshot.ingress_class_params
        )
        if params is not None:
            asked = [params[1]]
            break
    if len(set(asked)) != 1:
        return lb
    return replace(lb, attributes={**lb.attributes, ALB_IDLE_KEY: str(asked[0])})


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
        # Manifests rarely hold pods: each workload's template stands for the pods it makes.
        pods += [_template_pod(w) for w in workloads if not _has_pod(w, pods)]
        return pods, workloads + [c for c in self.controllers if c not in workloads]

    def configmaps(self, namespace: str) -> dict[str, KubeObject]:
        return {kube.name(c): c for c in self.of("ConfigMap") if kube.namespace(c) == namespace}


def _template_pod(workload: KubeObject) -> KubeObject:
    """A pod as ``workload`` would create it, named after its template."""
    template = kube.pod_template(workload)
    metadata = dict(template.get("metadata") or {})
    metadata["namespace"] = kube.namespace(workload)
    metadata["name"] = f"{kube.name(workload)} (pod template)"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": kube.spec(template)}


def _has_pod(workload: KubeObject, pods: list[KubeObject]) -> bool:
    selector = (kube.spec(workload).get("selector") or {}).get("matchLabels") or {}
    return any(kube.selector_matches(selector, kube.labels(p)) for p in pods)


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
            ingress_class_params=world.of("IngressClassParams"),
            events=world.events,
            gaps=[offline],
        )
        own = roles.service_lb(snapshot, service)
        if own is not None and own.controller != "other":
            ports = list(kube.spec(service).get("ports") or [])
            if own.type == "classic":
                ports = [_classic_listener(service, p) for p in ports]
            snapshot.load_balancers.append(
                _pseudo_lb(
                    f"(load balancer of {kube.ref(service)})",
                    "classic" if own.type == "classic" else "network",
                    [kube.ref(service)],
                    ports,
                )
            )
        snapshot.load_balancers.extend(_alb_lbs(world, ingresses))
        snapshot.load_balancers = [_asked_idle(snapshot, lb) for lb in snapshot.load_balancers]
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
                ingress_class_params=world.of("IngressClassParams"),
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


def _shorten(finding: Finding, long_values: list[str]) -> Finding:
    """``finding`` with every long value it repeats cut to :data:`ECHO_LIMIT` characters."""

    def short(text: str) -> str:
        for value in long_values:
            if value in text:
                text = text.replace(value, cap(value))
        return cap(text, LINE_LIMIT)

    fixes = tuple(
        dataclasses.replace(f, title=short(f.title), text="\n".join(map(short, f.text.split("\n"))))
        for f in finding.fixes
    )
    return dataclasses.replace(
        finding,
        summary=short(finding.summary),
        resource=short(finding.resource),
        evidence=tuple(short(e) for e in finding.evidence),
        fixes=fixes,
    )


def _long_values(objects: list[KubeObject]) -> list[str]:
    found = {
        value
        for obj in objects
        for value in [*kube.annotations(obj).values(), kube.name(obj), kube.namespace(obj)]
        if len(value) > ECHO_LIMIT
    }
    # The longest first, so that a value holding a shorter one is cut whole.
    return sorted(found, key=len, reverse=True)


def _judged(
    source: str, line: int, obj: KubeObject, lines: Mapping[int, int]
) -> tuple[KubeObject | None, list[LintNote], list[LintFinding]]:
    """The object as the checks may read it (None when the API server would reject it),
    with notes on its shape and findings on its annotations."""
    problems = shape_problems(obj)
    notes = [
        LintNote(
            source,
            lines.get(id(problem.holder), line),
            f"{label(obj)}: {problem.message}; the API server rejects this object, "
            "so it was not judged",
            invalid=True,
        )
        for problem in problems
    ]
    meta = obj.get("metadata")
    at = lines.get(id(meta.get("annotations")), line) if isinstance(meta, dict) else line
    if problems:
        # Its name may not even be a string: say what is wrong with its annotations
        # in the same words, beside the other notes.
        _, malformed = annotation_problems(obj, label(obj))
        notes.extend(LintNote(source, at, f.summary, invalid=True) for f in malformed)
        return None, notes, []
    normalised = _with_namespace(obj)
    usable, malformed = annotation_problems(normalised)
    if usable is not None:
        normalised = copy.copy(normalised)
        normalised["metadata"] = {**normalised["metadata"], "annotations": usable}
    return normalised, notes, [LintFinding(source, at, f) for f in malformed]


def _judge(
    check: Check, snapshot: Snapshot, where: dict[str, tuple[str, int]]
) -> tuple[list[Finding], LintNote | None]:
    """The check's findings, or a note when it failed: one object the checks cannot read
    must not stop the others from being judged."""
    try:
        return check.judge(snapshot), None
    except Exception as exc:
        obj = snapshot.service or (snapshot.ingresses[0] if snapshot.ingresses else None)
        subject = kube.ref(obj) if obj is not None else snapshot.namespace
        logger.exception("check %s failed on %s", check.name, subject)
        source, line = where.get(subject, ("", 0))
        return [], LintNote(
            source,
            line,
            f"{subject}: the check {check.name} could not judge it ({type(exc).__name__}: "
            f"{cap(str(exc))}); this is a bug in eks504, please report it",
            invalid=True,
        )


def lint(docs: list[Document], lines: Mapping[int, int] | None = None) -> LintResult:
    """Judge ``docs``; ``lines`` (the id of a mapping in them -> its line) lets a note on
    a field point at the line that holds it."""
    lines = lines or {}
    objects, notes = expand(docs)
    where: dict[str, tuple[str, int]] = {}
    normalised: list[KubeObject] = []
    early: list[LintFinding] = []
    for source, line, obj in objects:
        judged, object_notes, findings = _judged(source, line, obj, lines)
        notes.extend(object_notes)
        early.extend(findings)
        if judged is None:
            continue
        where.setdefault(kube.ref(judged), (source, line))
        notes.extend(_object_notes(source, line, judged))
        normalised.append(judged)
    result = LintResult(notes=notes, findings=early)
    seen: set[tuple[str, str, str, str]] = set()
    for snapshot in snapshots(normalised):
        by_lb = {
            f"{lb.type} load balancer {lb.name}": next(iter(roles.refs_of(lb)), "")
            for lb in snapshot.load_balancers
        }
        for check in LINT_CHECKS:
            judged_findings, failed = _judge(check, snapshot, where)
            if failed is not None:
                result.notes.append(failed)
            for finding in judged_findings:
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
    long_values = _long_values(normalised)
    result.findings = [
        LintFinding(f.source, f.line, _shorten(f.finding, long_values)) for f in result.findings
    ]
    result.findings.sort(key=lambda f: (f.source, f.line, f.finding.code))
    logger.info(
        "linted %d object(s): %d finding(s), %d note(s)",
        len(normalised),
        len(result.findings),
        len(result.notes),
    )
    return result


# ---- reading YAML ------------------------------------------------------------------------
# Before a YAML text is built into objects, one streaming pass over its events refuses what
# would exhaust memory or the stack later: aliases that expand a few hundred bytes into
# gigabytes (the objects share their nodes, but every walk over them would not), and
# nesting deeper than any manifest needs (the composer recurses once per level).

MAX_DEPTH = 100
# Manifests share a few blocks through aliases; an alias bomb needs thousands of aliases
# or millions of values.
MAX_ALIASES = 500
MAX_ALIAS_NODES = 100_000


# libyaml's parser, where PyYAML has it, reads the events twenty times faster; the
# composing pass that follows stays pure Python, whose messages the tests pin.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlRefused(Exception):
    """A YAML text that cannot be used: ``line`` (1-based; 0 when unknown) and ``reason``,
    a phrase such as ``not valid YAML (...)``."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


def _screen_yaml(text: str) -> None:
    """Refuse, from the event stream alone, nesting deeper than :data:`MAX_DEPTH` and
    aliases beyond :data:`MAX_ALIASES` or expanding to more than :data:`MAX_ALIAS_NODES`."""
    # Per open collection: its anchor and how many values it holds once expanded.
    open_nodes: list[tuple[str | None, list[int]]] = []
    sizes: dict[str, int] = {}
    aliases = added = 0
    for event in yaml.parse(text, Loader=_FAST_LOADER):
        line = event.start_mark.line + 1 if event.start_mark else 0
        size = 0
        if isinstance(event, yaml.DocumentStartEvent):
            sizes.clear()  # an anchor does not reach into the next document
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(open_nodes) >= MAX_DEPTH:
                raise YamlRefused(
                    line,
                    f"nested too deeply (more than {MAX_DEPTH} levels; "
                    "no Kubernetes object needs that many)",
                )
            open_nodes.append((event.anchor, [1]))
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, (size,) = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = size
        elif isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_nodes):
                raise YamlRefused(
                    line,
                    f"the alias *{event.anchor} refers to a node that contains it "
                    "(an object cannot hold itself)",
                )
            size = sizes.get(str(event.anchor), 1)
            aliases += 1
            added += size
            if aliases > MAX_ALIASES or added > MAX_ALIAS_NODES:
                raise YamlRefused(
                    line,
                    f"too many aliases (more than {MAX_ALIASES} aliases, or "
                    f"{MAX_ALIAS_NODES:,} values once expanded); write the repeated parts "
                    "out, or remove the anchors",
                )
        if size and open_nodes:
            open_nodes[-1][1][0] += size


def _lines_of(root: yaml.Node, obj: Any, lines: dict[int, int]) -> None:
    """Record the start line of every mapping in ``obj``, walking its node in step; a node
    reached again through an alias is walked once."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, Any]] = [(root, obj)]
    while stack:
        node, value = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode) and isinstance(value, dict):
            lines.setdefault(id(value), node.start_mark.line + 1)
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value in value:
                    stack.append((value_node, value[key_node.value]))
        elif isinstance(node, yaml.SequenceNode) and isinstance(value, list):
            stack.extend(zip(node.value, value, strict=False))


def _refusal(exc: yaml.YAMLError, text: str) -> YamlRefused:
    if isinstance(exc, numbers.YamlNumberTooLong):
        mark = exc.problem_mark
        return YamlRefused(mark.line + 1 if mark else 0, f"{exc.problem}; check the value")
    if isinstance(exc, yaml.reader.ReaderError):
        # The reader counts characters; a person looks for a line.
        position = exc.position if isinstance(exc.position, int) else 0
        character = exc.character
        code = character if isinstance(character, int) else ord(str(character)[:1] or "\0")
        return YamlRefused(
            text.count("\n", 0, position) + 1,
            f"not valid YAML (control character #x{code:04x}, which YAML does not allow; "
            "remove it, or check that the file is text)",
        )
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    line = mark.line + 1 if mark else 0
    return YamlRefused(line, f"not valid YAML ({problem}){_helm_hint(text, line)}")


def _helm_hint(text: str, line: int) -> str:
    """What to do when the YAML that failed holds Helm's ``{{ }}``: a chart's template,
    not the manifests it renders (unquoted, ``{{ x }}`` is a YAML mapping in a mapping)."""
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    found = _HELM_ACTION.search(here) or _HELM_ACTION.search(text)
    if found is None:
        return ""
    return (
        f"; it looks like an unrendered Helm template ({cap(found.group(0), 60)}): "
        "render it with `helm template` first and use the output"
    )


@dataclass(frozen=True)
class DuplicateKeys:
    """Keys given more than once in one YAML mapping, which YAML forbids: PyYAML keeps the
    last value without a word, kubectl refuses the file. ``line`` is where the first key
    comes again, ``first_line`` where it was first given; ``objects_run_together`` when a
    whole document repeats ``apiVersion`` or ``kind`` (two objects without ``---``)."""

    line: int
    keys: tuple[str, ...]
    first_line: int
    objects_run_together: bool

    @property
    def reason(self) -> str:
        quoted = [f"`{cap(key, 60)}`" for key in self.keys[:3]]
        if len(self.keys) > 3:
            quoted.append(f"{len(self.keys) - 3} more")
        if len(quoted) == 1:
            what = f"the key {quoted[0]} is given twice in one mapping (first at line "
        else:
            listed = ", ".join(quoted[:-1]) + f" and {quoted[-1]}"
            what = f"the keys {listed} are given twice in one mapping ({quoted[0]} first at line "
        text = (
            f"{what}{self.first_line}): YAML keeps only the last value, and kubectl refuses "
            "the file"
        )
        if self.objects_run_together:
            text += "; two objects run together: put a line `---` between them"
        return text


@dataclass
class YamlDocument:
    """One document: its value, the start line of each of its mappings (by ``id``), and
    the keys it gives twice."""

    obj: Any
    lines: dict[int, int]
    duplicates: list[DuplicateKeys] = field(default_factory=list)


def _duplicate_keys(root: yaml.Node) -> list[DuplicateKeys]:
    """Mappings of ``root`` that give a key twice, read from the nodes before they are
    built (building merges ``<<`` keys in, which may rightly repeat a key)."""
    found: list[DuplicateKeys] = []
    seen: set[int] = set()
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        if not isinstance(node, yaml.MappingNode):
            continue
        first: dict[tuple[str, str], int] = {}
        again: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            stack.extend((key_node, value_node))
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            line = key_node.start_mark.line + 1
            ident = (key_node.tag, key_node.value)
            if ident in first:
                again.setdefault(str(key_node.value), (line, first[ident]))
            else:
                first[ident] = line
        if again:
            line, first_line = next(iter(again.values()))
            together = node is root and bool({"apiVersion", "kind"} & set(again))
            found.append(DuplicateKeys(line, tuple(again), first_line, together))
    return sorted(found, key=lambda d: d.line)


def read_yaml_documents(text: str) -> list[YamlDocument]:
    """Each document of ``text``, with the lines of its mappings and the keys it gives
    twice. Raises :class:`YamlRefused` for anything else that cannot be used."""
    documents: list[YamlDocument] = []
    loader: numbers.BoundedLoader | None = None
    try:
        try:
            _screen_yaml(text)
        except yaml.YAMLError:
            # Not valid YAML: the pass below says where, in the words users see everywhere.
            logger.debug("screening stopped at a syntax error; composing reports it")
        loader = numbers.BoundedLoader(text)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            duplicates = _duplicate_keys(node)
            obj = loader.construct_document(node)
            lines: dict[int, int] = {}
            _lines_of(node, obj, lines)
            lines.setdefault(id(obj), node.start_mark.line + 1)
            documents.append(YamlDocument(obj, lines, duplicates))
    except yaml.YAMLError as exc:
        raise _refusal(exc, text) from exc
    except RecursionError as exc:
        # Screened above; kept so that recursion inside PyYAML can never escape as a crash.
        raise YamlRefused(0, "nested too deeply") from exc
    finally:
        if loader is not None:
            loader.dispose()
    return documents


def read_yaml(text: str) -> list[tuple[Any, dict[int, int]]]:
    """Each document of ``text``, with the start line of each of its mappings (by the
    mapping's ``id``). Raises :class:`YamlRefused` for anything that cannot be used, a key
    given twice in one mapping included (:func:`read_yaml_documents` reports those)."""
    documents = read_yaml_documents(text)
    for document in documents:
        if document.duplicates:
            duplicate = document.duplicates[0]
            raise YamlRefused(duplicate.line, duplicate.reason)
    return [(d.obj, d.lines) for d in documents]


def is_scenario(obj: object) -> bool:
    return isinstance(obj, dict) and not obj.get("kind") and isinstance(obj.get("cluster"), list)


def lint_worlds(worlds: list[list[Document]], lines: Mapping[int, int] | None = None) -> LintResult:
    """Each list of documents judged on its own (a scenario file is its own cluster)."""
    merged = LintResult()
    for docs in worlds:
        result = lint(docs, lines)
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
