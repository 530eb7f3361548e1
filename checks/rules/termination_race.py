"""TERMINATION_RACE: pods stop serving before the load balancer stops sending them requests.

Behind ip targets the load balancer sends straight to pod IPs. When a pod is deleted (a
rollout, a scale-in, a drain), the kubelet signals it at once, while the AWS Load Balancer
Controller only then starts deregistering its IP and the load balancer takes a few more
seconds to stop routing to it. A container that exits on SIGTERM in that window drops the
requests still coming: 502s, 504s and target connection errors at every rollout. A pre-stop
delay keeps the pod serving until the load balancer has let go, and the grace period must
outlast that delay, or the kubelet kills the container in the middle of it.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from checks import kube, numbers, series, topology
from checks.fixes import fix
from checks.models import Finding, Fix, KubePatch, Severity, Status
from checks.registry import Check
from checks.rules.backend_port_mismatch import resolve
from checks.snapshot import KubeObject, LoadBalancer, Snapshot, TargetGroup

logger = logging.getLogger(__name__)

CODE = "TERMINATION_RACE"

# Deregistration and its propagation to the load balancer's nodes take up to this long.
MIN_PRESTOP_DELAY_S = 15
# Kubernetes' default terminationGracePeriodSeconds.
DEFAULT_GRACE_PERIOD_S = 30
# The target group's default deregistration_delay.timeout_seconds.
DEFAULT_DEREGISTRATION_DELAY_S = 300
# What a suggested fix leaves the app after the pre-stop delay to finish in-flight requests.
FIX_SHUTDOWN_ALLOWANCE_S = 30

DEREGISTRATION_DELAY_KEY = "deregistration_delay.timeout_seconds"
READINESS_GATE_PREFIX = "target-health.elbv2.k8s.aws/"
READINESS_INJECT_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"
# Counts that a dropped in-flight request or a refused connection shows up in, per type.
SYMPTOM_METRICS: dict[str, tuple[str, ...]] = {
    "application": ("HTTPCode_ELB_502_Count", "TargetConnectionErrorCount"),
}
_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
_SLEEP = re.compile(r"(?:^|[\s;&|(/])sleep\s+([0-9]+(?:\.[0-9]+)?)([smh]?)(?=$|[\s;&|)])")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class PreStop:
    """A container's pre-stop hook: ``seconds`` it delays SIGTERM, ``None`` when unknown."""

    kind: str  # none | sleep | exec | httpGet | tcpSocket
    seconds: float | None
    command: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "none":
            return "no preStop hook"
        if self.kind == "sleep":
            return f"preStop sleep action of {_secs(self.seconds or 0)}"
        if self.kind == "exec":
            shown = shlex.join(self.command)
            if self.seconds is None:
                return f"preStop exec {shown!r} with no sleep in it"
            return f"preStop exec {shown!r} ({_secs(self.seconds)} delay)"
        return f"preStop {self.kind} hook of unknown duration"


@dataclass
class _Unit:
    """Pods that share one pod template: a workload's, or a pod of its own."""

    label: str
    template: KubeObject
    pods: list[KubeObject]
    workload: KubeObject | None = None
    owner: str = ""  # kind/name of a controller not in the snapshot
    racy: list[str] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    containers: list[tuple[str, PreStop]] = field(default_factory=list)


def _secs(value: float) -> str:
    return f"{value:g} s"


def prestop(container: dict[str, Any]) -> PreStop:
    hook = (container.get("lifecycle") or {}).get("preStop") or {}
    if not isinstance(hook, dict) or not hook:
        return PreStop("none", None)
    if isinstance(hook.get("sleep"), dict):
        seconds = hook["sleep"].get("seconds")
        return PreStop("sleep", float(seconds) if isinstance(seconds, int | float) else None)
    if isinstance(hook.get("exec"), dict):
        command = tuple(str(c) for c in hook["exec"].get("command") or [])
        found = _SLEEP.search(" ".join(command))
        seconds = float(found.group(1)) * _UNIT_S[found.group(2)] if found else None
        return PreStop("exec", seconds, command)
    kind = next(iter(hook))
    return PreStop(str(kind), None)


def _grace(template: KubeObject) -> int:
    raw = kube.spec(template).get("terminationGracePeriodSeconds")
    return int(raw) if isinstance(raw, int) else DEFAULT_GRACE_PERIOD_S


def _owner(pod: KubeObject) -> str:
    for ref in kube.meta(pod).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return ""


def _units(snapshot: Snapshot, pods: list[KubeObject]) -> tuple[list[_Unit], list[KubeObject]]:
    """Pods grouped by the workload that rolls them; pods no controller manages come apart."""
    units: list[_Unit] = []
    claimed: set[str] = set()
    for workload in snapshot.workloads:
        selector = (kube.spec(workload).get("selector") or {}).get("matchLabels") or {}
        own = [
            p for p in pods
            if kube.namespace(p) == kube.namespace(workload)
            and kube.selector_matches(selector, kube.labels(p))
        ]  # fmt: skip
        if not own:
            continue
        claimed.update(kube.name(p) for p in own)
        label = f"{str(workload.get('kind', 'workload')).lower()}/{kube.name(workload)}"
        units.append(_Unit(label, kube.pod_template(workload), own, workload=workload))
    bare: list[KubeObject] = []
    for pod in pods:
        if kube.name(pod) in claimed:
            continue
        owner = _owner(pod)
        if owner:
            units.append(_Unit(topology.pod_label(pod), pod, [pod], owner=owner))
        else:
            bare.append(pod)
    return units, bare


def _serving_containers(
    template: KubeObject, pods: list[KubeObject], service: KubeObject | None, tg_ports: set[int]
) -> list[dict[str, Any]]:
    """The containers that own the port the load balancer sends to; all when none says so."""
    ports = [p for p in kube.spec(service or {}).get("ports") or [] if isinstance(p, dict)]
    wanted = set(tg_ports)
    for pod in pods[:1] or [template]:
        wanted.update(r for p in ports if (r := resolve(p, pod)) is not None)
    containers = kube.containers(template)
    serving = [
        c for c in containers
        if any(p.get("containerPort") in wanted for p in c.get("ports") or [])
    ]  # fmt: skip
    return serving or containers


def _judge_unit(unit: _Unit, service: KubeObject | None, tg_ports: set[int]) -> None:
    grace = _grace(unit.template)
    serving = _serving_containers(unit.template, unit.pods, service, tg_ports)
    delays: list[float] = []
    for container in serving:
        hook = prestop(container)
        name = str(container.get("name", ""))
        unit.containers.append((name, hook))
        if hook.seconds is None and hook.kind not in ("none", "exec"):
            unit.unmeasured.append(f"{unit.label} container {name}: {hook.describe()}")
            continue
        seconds = hook.seconds or 0.0
        delays.append(seconds)
        if not seconds:
            unit.racy.append(
                f"{unit.label} container {name}: {hook.describe()}: it gets SIGTERM at once, "
                "while the load balancer may go on sending to a pod being deregistered for up "
                f"to {MIN_PRESTOP_DELAY_S} s"
            )
        elif seconds < MIN_PRESTOP_DELAY_S:
            unit.racy.append(
                f"{unit.label} container {name}: {hook.describe()}, under the "
                f"{MIN_PRESTOP_DELAY_S} s the load balancer may go on sending to a pod being "
                "deregistered"
            )
    unit.delay_s = min(delays) if delays else 0.0
    longest = max(delays, default=0.0)
    if longest and grace <= longest:
        unit.racy.append(
            f"{unit.label}: terminationGracePeriodSeconds {grace} s does not outlast the "
            f"{_secs(longest)} pre-stop delay: the kubelet kills the container before it has "
            "finished"
        )


def _relevant_groups(snapshot: Snapshot, pods: list[KubeObject]) -> list[TargetGroup]:
    ips = {topology.pod_ip(p) for p in pods} - {""}
    ip_groups = [
        tg for lb in snapshot.load_balancers for tg in lb.target_groups if tg.target_type == "ip"
    ]
    matched = [tg for tg in ip_groups if any(t.id in ips for t in tg.targets)]
    return matched or ip_groups


def _group_lines(snapshot: Snapshot, groups: list[TargetGroup]) -> list[str]:
    lines = []
    for tg in groups:
        raw = tg.attributes.get(DEREGISTRATION_DELAY_KEY)
        if raw is None and topology.find_gap(snapshot, "target-group-attributes", tg.name):
            lines.append(f"{tg.name}: deregistration delay not read")
            continue
        delay = numbers.whole(raw or "")
        if delay is None:
            delay = DEFAULT_DEREGISTRATION_DELAY_S
        lines.append(
            f"{tg.name} (ip targets): deregistration delay {delay} s"
            + ("" if raw else " (the default)")
            + ": requests in flight get that long to finish once deregistration starts"
        )
    return lines


def _symptoms(snapshot: Snapshot, lbs: list[LoadBalancer]) -> list[str]:
    lines = []
    for lb in lbs:
        for metric in SYMPTOM_METRICS.get(lb.type, ()):
            values = series.total_across_target_groups(snapshot, lb, metric)
            per_minute = series.by_minute(values)
            minutes = {m: v for m, v in per_minute.items() if v > 0}
            if minutes:
                lines.append(
                    f"{lb.name} {metric}: {int(sum(minutes.values()))} in {len(minutes)} of the "
                    f"last {series.window_minutes(snapshot, per_minute)} minutes: bursts like "
                    "these follow "
                    "rollouts when pods exit early"
                )
    return lines


def _gate_lines(pods: list[KubeObject], namespace: str) -> tuple[list[str], bool]:
    gated = [
        p for p in pods
        if any(
            str(g.get("conditionType", "")).startswith(READINESS_GATE_PREFIX)
            for g in kube.spec(p).get("readinessGates") or []
        )
    ]  # fmt: skip
    if pods and len(gated) == len(pods):
        return ["pod readiness gates: on (a rollout waits for new targets to be healthy)"], True
    return [
        f"pod readiness gates: {len(gated)} of {len(pods)} pod(s) carry one; without them a "
        "rollout can remove old pods before the new ones are healthy targets (label namespace "
        f"{namespace} with {READINESS_INJECT_LABEL}=enabled)"
    ], False


def _patch(unit: _Unit, use_sleep_action: bool) -> tuple[str, int, int] | None:
    delay = max(MIN_PRESTOP_DELAY_S, int(unit.delay_s))
    grace = max(_grace(unit.template), delay + FIX_SHUTDOWN_ALLOWANCE_S)
    containers: list[dict[str, Any]] = []
    for name, hook in unit.containers:
        if hook.kind not in ("none", "sleep", "exec"):
            return None
        if use_sleep_action:
            if hook.kind == "exec" and hook.seconds is None:
                return None
            pre: dict[str, Any] = {"sleep": {"seconds": delay}}
            if hook.kind == "exec":
                pre["exec"] = None  # a hook has one handler: drop the exec one
        elif hook.kind == "exec" and hook.seconds is None:
            pre = {
                "exec": {"command": ["sh", "-c", f"sleep {delay} && {shlex.join(hook.command)}"]}
            }
        else:
            pre = {"exec": {"command": ["sleep", str(delay)]}}
            if hook.kind == "sleep":
                pre["sleep"] = None
        containers.append({"name": name, "lifecycle": {"preStop": pre}})
    body = {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": grace,
                                           "containers": containers}}}}  # fmt: skip
    return json.dumps(body, separators=(",", ":")), delay, grace


def _fixes(snapshot: Snapshot, units: list[_Unit], gates_on: bool) -> tuple[Fix, ...]:
    fixes: list[Fix] = []
    for unit in units:
        if not unit.racy:
            continue
        if unit.workload is not None:
            api_kind, name = str(unit.workload.get("kind", "")), kube.name(unit.workload)
        elif unit.owner.split("/", 1)[0] in _WORKLOAD_KINDS:
            api_kind, name = unit.owner.split("/", 1)
        else:
            continue
        kind = api_kind.lower()
        for sleep_action in (False, True):
            patched = _patch(unit, sleep_action)
            if patched is None:
                continue
            body, delay, grace = patched
            how = "the sleep action (Kubernetes 1.30+)" if sleep_action else "sleep in the image"
            text = fix(
                f"Delay SIGTERM {delay} s with {how}, grace {grace} s: {kind}/{name}",
                "shell",
                "termination_patch.sh.j2",
                kind=kind,
                namespace=snapshot.namespace,
                name=name,
                patch=body,
            )
            patch = KubePatch(api_kind, snapshot.namespace, name, "strategic", json.loads(body))
            fixes.append(replace(text, apply=patch))
    if fixes and not gates_on:
        fixes.append(
            fix(
                f"Turn on pod readiness gates in {snapshot.namespace}",
                "shell",
                "termination_readiness_gate.sh.j2",
                namespace=snapshot.namespace,
                label=f"{READINESS_INJECT_LABEL}=enabled",
                workloads=[u.label for u in units if u.workload is not None],
            )
        )
    return tuple(fixes)


def judge(snapshot: Snapshot) -> list[Finding]:
    ask = f"{snapshot.namespace}/{snapshot.service_name}"
    resource = f"service/{ask}"
    lbs = [lb for lb in snapshot.load_balancers if topology.uses_ip_targets(lb)]
    if not lbs:
        gap = topology.find_gap(snapshot, "target-groups")
        if gap is not None:
            return [
                Finding(CODE, Status.UNKNOWN, Severity.HIGH,
                        f"Could not read the target groups in front of {ask}.", resource,
                        (gap.reason,))
            ]  # fmt: skip
        return [
            Finding(CODE, Status.PASS, Severity.HIGH,
                    f"No ip target group sends to {ask}: pods are reached through nodes.",
                    resource)
        ]  # fmt: skip
    pod_gap = topology.find_gap(snapshot, "kubernetes:pods")
    if pod_gap is not None or not snapshot.pods:
        reason = pod_gap.reason if pod_gap else "the Service selects no pod"
        return [
            Finding(CODE, Status.UNKNOWN, Severity.HIGH,
                    f"Could not read the pods behind {ask}.", resource, (reason,))
        ]  # fmt: skip

    units, bare = _units(snapshot, snapshot.pods)
    groups = _relevant_groups(snapshot, snapshot.pods)
    tg_ports = {t.port or tg.port for tg in groups for t in tg.targets} | {tg.port for tg in groups}
    for unit in units:
        _judge_unit(unit, snapshot.service, tg_ports)
    racy = [line for u in units for line in u.racy]
    unmeasured = [line for u in units for line in u.unmeasured]
    gate_lines, gates_on = _gate_lines(snapshot.pods, snapshot.namespace)
    context = [*_group_lines(snapshot, groups), *gate_lines]
    workload_gap = topology.find_gap(snapshot, "kubernetes:deployments") or topology.find_gap(
        snapshot, "kubernetes:statefulsets"
    )
    bare_units = [_Unit(topology.pod_label(p), p, [p]) for p in bare]
    for unit in bare_units:
        _judge_unit(unit, snapshot.service, tg_ports)
    bare_racy = [line for u in bare_units for line in u.racy]
    bare_lines = [
        f"no Deployment or StatefulSet manages {', '.join(kube.name(p) for p in bare)}: no "
        "rollout replaces them while they serve",
        *(f"once a controller manages them: {line}" for line in bare_racy),
    ] if bare else []  # fmt: skip

    if racy:
        symptoms = _symptoms(snapshot, lbs)
        grace = ", ".join(f"{u.label} {_grace(u.template)} s" for u in units if u.racy)
        return [
            Finding(
                CODE,
                Status.FAIL if symptoms else Status.WARN,
                Severity.HIGH if symptoms else Severity.MEDIUM,
                f"Pods behind ip targets of {', '.join(lb.name for lb in lbs)} can stop serving "
                "before the load balancer stops sending to them.",
                resource,
                tuple(
                    [*racy, f"grace period: {grace}", *unmeasured, *context, *symptoms, *bare_lines]
                ),
                _fixes(snapshot, units, gates_on),
            )
        ]
    if unmeasured or (bare and workload_gap is not None):
        reasons = list(unmeasured)
        if bare and workload_gap is not None:
            reasons.append(f"could not tell what manages the pods: {workload_gap.reason}")
        return [
            Finding(CODE, Status.UNKNOWN, Severity.HIGH,
                    f"Could not tell how long pods behind {ask} keep serving after deletion.",
                    resource, tuple([*reasons, *context]))
        ]  # fmt: skip
    shown = [
        f"{u.label}: {', '.join(f'{n} {h.describe()}' for n, h in u.containers)}, grace "
        f"{_grace(u.template)} s"
        for u in units
    ]
    summary = f"Pods behind {ask} keep serving long enough for the load balancer to let go."
    if bare_racy:
        summary = (
            f"No controller rolls the pods behind {ask} out, so their short pre-stop delay "
            "races no load balancer yet."
        )
    return [
        Finding(
            CODE,
            Status.PASS,
            Severity.HIGH,
            summary,
            resource,
            tuple([*shown, *bare_lines, *context]),
        )
    ]


CHECK = Check(
    name="termination_race",
    codes=(CODE,),
    severity=Severity.HIGH,
    title="Pods stop before the load balancer lets go",
    explains=(
        "Behind ip targets, a pod that exits on SIGTERM before the load balancer has "
        "deregistered it drops the requests still sent to it: 502/504 at every rollout."
    ),
    judge=judge,
    templates=("termination_patch.sh.j2", "termination_readiness_gate.sh.j2"),
    step="load balancer",
)
