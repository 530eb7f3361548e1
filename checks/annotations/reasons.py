"""Why an idle timeout an annotation asks for is not the one in effect, and the fix that
puts it where the load balancer's controller reads it.

Used by the idle-timeout checks; every reason is stated from the snapshot's data (the
annotation knowledge base, the controller release, the object's Warning events, the other
members of its IngressGroup).
"""

from __future__ import annotations

from typing import Any

from checks import kube
from checks.annotations import roles
from checks.annotations.judge import Evaluation, evaluate
from checks.annotations.kb import format_version, knowledge_base
from checks.annotations.values import parse_string_map
from checks.annotations_idle import (
    ALB_IDLE_KEY,
    ALB_LB_ATTRIBUTES,
    CLB_IDLE_TIMEOUT,
    NLB_IDLE_KEY,
    NLB_LISTENER_ATTRIBUTES_PREFIX,
)
from checks.fixes import fix
from checks.models import Fix
from checks.snapshot import KubeObject, LoadBalancer, Snapshot

# Above this an NLB flow also outlives the targets' default connection tracking.
NLB_CONNTRACK_THRESHOLD_S = 350


def warning_events(snapshot: Snapshot, obj: KubeObject) -> list[str]:
    kind, ns, name = str(obj.get("kind", "")), kube.namespace(obj), kube.name(obj)
    lines = []
    for event in snapshot.events:
        involved = event.get("involvedObject") or {}
        if event.get("type") != "Warning":
            continue
        if (
            str(involved.get("kind")),
            str(involved.get("namespace")),
            str(involved.get("name")),
        ) != (
            kind,
            ns,
            name,
        ):
            continue
        count = event.get("count")
        times = f" ({count} times)" if count else ""
        lines.append(f"Warning {event.get('reason', '')}{times}: {event.get('message', '')}")
    return lines


def group_disagreement(snapshot: Snapshot, obj: KubeObject) -> str:
    """The other members of the Ingress's group that ask a different ALB idle timeout."""
    if str(obj.get("kind")) != "Ingress":
        return ""
    group = kube.annotations(obj).get(roles.GROUP_KEY, "").strip()
    if not group:
        return ""
    asks: dict[str, str] = {}
    for member in snapshot.ingresses:
        if kube.annotations(member).get(roles.GROUP_KEY, "").strip() != group:
            continue
        raw = kube.annotations(member).get(ALB_LB_ATTRIBUTES)
        if raw is None:
            continue
        value = parse_string_map(raw, escaped=True).pairs.get(ALB_IDLE_KEY)
        if value is not None:
            asks[kube.ref(member)] = value
    if len(set(asks.values())) < 2:
        return ""
    listed = ", ".join(f"{ref}: {value}" for ref, value in sorted(asks.items()))
    return f"the members of IngressGroup {group} ask for different idle timeouts ({listed})"


def explain_not_applied(
    snapshot: Snapshot, obj: KubeObject, key: str, evaluation: Evaluation | None = None
) -> list[str]:
    """Every reason the data shows for ``key`` on ``obj`` not taking effect; empty when the
    data shows none."""
    evaluation = evaluation or evaluate(snapshot)
    reasons: list[str] = []
    for issue in evaluation.issues:
        if issue.obj is obj and issue.key == key and issue.reason:
            reasons.append(f"{issue.code}: {issue.reason}")
    for too_new_obj, too_new_key, since in evaluation.too_new:
        if too_new_obj is obj and too_new_key == key and evaluation.version is not None:
            reasons.append(
                f"the installed AWS Load Balancer Controller is "
                f"{format_version(evaluation.version)}; {key.split('/', 1)[1]} needs "
                f"{format_version(since)} or later"
            )
    spec = knowledge_base().lookup(key)
    if (
        evaluation.version is None
        and spec is not None
        and spec.since is not None
        and spec.since > (2, 0, 0)
    ):
        reasons.append(
            f"{key.split('/', 1)[1]} needs AWS Load Balancer Controller "
            f"{format_version(spec.since)} or later; the installed release could not be read"
        )
    conflict = group_disagreement(snapshot, obj)
    if conflict:
        reasons.append(conflict)
    reasons.extend(f"reconcile failing: {line}" for line in warning_events(snapshot, obj))
    return list(dict.fromkeys(reasons))


def upgrade_fixes(
    snapshot: Snapshot,
    lb: LoadBalancer,
    obj: KubeObject,
    key: str,
    seconds: int,
    evaluation: Evaluation | None = None,
) -> list[Fix]:
    """For an ask of ``seconds`` under the right key that the installed controller is too old
    to read: the upgrade, and what the new value needs besides. The key itself needs no
    change, so no fix rewrites it."""
    evaluation = evaluation or evaluate(snapshot)
    for too_new_obj, too_new_key, since in evaluation.too_new:
        if too_new_obj is obj and too_new_key == key and evaluation.version is not None:
            upgrade = fix(
                f"Upgrade the AWS Load Balancer Controller to {format_version(since)} or later",
                "shell",
                "controller_upgrade.sh.j2",
                installed=format_version(evaluation.version),
                needed=format_version(since),
                key=key,
            )
            return [upgrade, *conntrack_fixes(snapshot, lb, seconds)]
    return []


def _instance_ids(snapshot: Snapshot, lb: LoadBalancer) -> list[str]:
    ids = sorted(
        {t.id for tg in lb.target_groups if tg.target_type == "instance" for t in tg.targets}
    )
    if not ids:
        ids = sorted({kube.node_instance_id(n) for n in snapshot.nodes} - {""})
    return ids or ["<instance-id>"]


def _lbc_owned(snapshot: Snapshot, lb: LoadBalancer, obj: KubeObject) -> bool:
    """Whether the AWS Load Balancer Controller makes ``lb``: its tags say so, or (judging
    manifests, with no tags) the Service asks for it."""
    if lb.managed_by_lb_controller:
        return True
    own = roles.service_lb(snapshot, obj) if str(obj.get("kind")) == "Service" else None
    return own is not None and own.controller == "lbc"


def idle_fixes(
    snapshot: Snapshot, lb: LoadBalancer, obj: KubeObject, seconds: int, key: str = ""
) -> list[Fix]:
    """Where ``seconds`` belongs for ``lb``, as its controller reads it; none for a TLS
    listener, whose idle timeout AWS keeps at 350 s."""
    if key.startswith(NLB_LISTENER_ATTRIBUTES_PREFIX + "TLS-"):
        return []
    kind = str(obj.get("kind", "")).lower()
    target = obj
    if lb.type == "application" and kind != "ingress":
        target = next((i for i in snapshot.ingresses if kube.ref(i) in roles.refs_of(lb)), obj)
    base: dict[str, Any] = {
        "kind": str(target.get("kind", "")).lower(),
        "namespace": kube.namespace(target) or "default",
        "name": kube.name(target),
    }
    fixes: list[Fix] = []
    if lb.type == "classic":
        value = str(max(1, min(seconds, 4000)))
        fixes.append(
            fix(
                f"Ask {value} s where the in-tree controller reads it",
                "shell",
                "annotate_idle_timeout.sh.j2",
                key=CLB_IDLE_TIMEOUT,
                value=value,
                **base,
            )
        )
    elif lb.type == "application":
        value = str(max(1, min(seconds, 4000)))
        pairs = parse_string_map(
            kube.annotations(target).get(ALB_LB_ATTRIBUTES, ""), escaped=True
        ).pairs
        pairs[ALB_IDLE_KEY] = value
        fixes.append(
            fix(
                f"Ask {value} s in the ALB's attributes",
                "shell",
                "annotate_idle_timeout.sh.j2",
                key=ALB_LB_ATTRIBUTES,
                value=",".join(f"{k}={v}" for k, v in pairs.items()),
                **base,
            )
        )
    elif not _lbc_owned(snapshot, lb, target):
        # The in-tree controller leaves listener attributes alone: set on the NLB, it stays.
        value_s = max(60, min(seconds, 6000))
        for listener in lb.listeners:
            if listener.protocol.upper() != "TCP" or not listener.arn:
                continue
            fixes.append(
                fix(
                    f"Set {value_s} s on the NLB's TCP listener {listener.port} (the in-tree "
                    "controller reads no annotation for it, and does not undo this)",
                    "shell",
                    "nlb_listener_idle.sh.j2",
                    region=snapshot.region,
                    arn=listener.arn,
                    seconds=value_s,
                )
            )
    else:
        value_s = max(60, min(seconds, 6000))
        ports = [p for p in kube.spec(target).get("ports") or [] if isinstance(p, dict)]
        port = ports[0].get("port") if ports else lb.listeners[0].port if lb.listeners else 0
        fixes.append(
            fix(
                f"Ask {value_s} s on the NLB's TCP listener (AWS Load Balancer Controller "
                "v2.9.0 or later)",
                "shell",
                "annotate_idle_timeout.sh.j2",
                key=f"{NLB_LISTENER_ATTRIBUTES_PREFIX}TCP-{port}",
                value=f"{NLB_IDLE_KEY}={value_s}",
                **base,
            )
        )
    return fixes + conntrack_fixes(snapshot, lb, seconds) if fixes else fixes


def conntrack_fixes(snapshot: Snapshot, lb: LoadBalancer, seconds: int) -> list[Fix]:
    """An NLB idle timeout above 350 s also needs the targets to track idle flows as long."""
    value_s = max(60, min(seconds, 6000))
    if lb.type != "network" or value_s <= NLB_CONNTRACK_THRESHOLD_S:
        return []
    return [
        fix(
            "Raise the targets' connection tracking timeout to match",
            "shell",
            "annotation_nlb_conntrack.sh.j2",
            seconds=value_s,
            instance_ids=_instance_ids(snapshot, lb),
        )
    ]
