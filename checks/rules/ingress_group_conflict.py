"""INGRESS_GROUP_CONFLICT: Ingresses that share one ALB through an IngressGroup ask for
different values of a setting that the whole load balancer has only once.

The AWS Load Balancer Controller refuses to build the group's model when two members
disagree on an exclusive annotation (or on one attribute inside the load-balancer
attributes), so nothing in the group is reconciled until they agree.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from checks import kube
from checks.annotations import roles
from checks.annotations.kb import AnnotationSpec, knowledge_base
from checks.annotations.values import parse_int, parse_string_map
from checks.fixes import fix
from checks.models import Finding, Fix, Severity, Status
from checks.registry import Check
from checks.snapshot import KubeObject, Snapshot

logger = logging.getLogger(__name__)
CODE = "INGRESS_GROUP_CONFLICT"
NOT_SET = "(not set)"


def groups(snapshot: Snapshot) -> dict[str, list[KubeObject]]:
    """Explicit IngressGroups among the snapshot's ALB Ingresses, members sorted by ref."""
    found: dict[str, list[KubeObject]] = defaultdict(list)
    for ingress in snapshot.ingresses:
        if roles.is_alb_ingress(ingress, snapshot.ingress_classes) is False:
            continue
        if kube.annotations(ingress).get(roles.GROUP_KEY, "").strip():
            found[roles.group_name(ingress)].append(ingress)
    return {name: sorted(members, key=kube.ref) for name, members in found.items()}


def _asked(spec: AnnotationSpec, members: list[KubeObject]) -> dict[str, dict[str, str]]:
    """setting -> member ref -> value; a stringMap with attributes is compared per
    attribute, as the controller merges it."""
    asked: dict[str, dict[str, str]] = defaultdict(dict)
    for member in members:
        raw = kube.annotations(member).get(spec.key)
        if raw is None:
            continue
        if spec.attributes:
            parsed = parse_string_map(raw, escaped=True)
            for attribute, value in parsed.pairs.items():
                asked[attribute][kube.ref(member)] = value
        else:
            asked[spec.key][kube.ref(member)] = raw.strip()
    return asked


def _warnings(snapshot: Snapshot, members: list[KubeObject]) -> list[str]:
    refs = {(kube.namespace(m), kube.name(m)) for m in members}
    lines = []
    for event in snapshot.events:
        involved = event.get("involvedObject") or {}
        if event.get("type") != "Warning" or str(involved.get("kind")) != "Ingress":
            continue
        if (str(involved.get("namespace")), str(involved.get("name"))) in refs:
            lines.append(
                f"event on ingress/{involved.get('namespace')}/{involved.get('name')}: "
                f"{event.get('reason', '')}: {event.get('message', '')}"
            )
    return lines


def _choice(values: list[str]) -> str:
    numbers = [parse_int(v) for v in values]
    if all(n is not None for n in numbers):
        return str(max(n for n in numbers if n is not None))
    return sorted(values)[0]


def _align_fix(
    group: str,
    spec: AnnotationSpec,
    setting: str,
    chosen: str,
    members: list[KubeObject],
    by_member: dict[str, str],
) -> Fix:
    rows = []
    for member in members:
        if kube.ref(member) not in by_member:
            continue
        raw = kube.annotations(member)[spec.key]
        if spec.attributes:
            pairs = parse_string_map(raw, escaped=True).pairs
            pairs[setting] = chosen
            value = ",".join(f"{k}={v}" for k, v in pairs.items())
        else:
            value = chosen
        rows.append(
            {"namespace": kube.namespace(member), "name": kube.name(member), "value": value}
        )
    return fix(
        f"Ask the same {setting} on every member of group {group} (here: {chosen})",
        "shell",
        "annotation_group_align.sh.j2",
        group=group,
        attribute=setting,
        key=spec.key,
        members=rows,
    )


def judge(snapshot: Snapshot) -> list[Finding]:
    kb = knowledge_base()
    exclusive = [s for s in kb.specs if s.merge == "exclusive" and not s.pattern]
    findings: list[Finding] = []
    for group, members in groups(snapshot).items():
        conflicts = 0
        for spec in exclusive:
            for setting, by_member in _asked(spec, members).items():
                distinct = sorted(set(by_member.values()))
                if len(distinct) < 2:
                    continue
                conflicts += 1
                evidence = [
                    f"{kube.ref(m)}: {setting}={by_member.get(kube.ref(m), NOT_SET)}"
                    for m in members
                ]
                evidence += _warnings(snapshot, members)
                findings.append(
                    Finding(
                        CODE,
                        Status.FAIL,
                        Severity.HIGH,
                        f"The {len(members)} Ingresses of IngressGroup {group} ask for "
                        f"{len(distinct)} different values of {setting} "
                        f"({', '.join(distinct)}); the controller cannot reconcile the group "
                        "until they agree.",
                        kube.ref(members[0]),
                        tuple(evidence),
                        (_align_fix(group, spec, setting, _choice(distinct), members, by_member),),
                    )
                )
        if not conflicts:
            findings.append(
                Finding(
                    CODE,
                    Status.PASS,
                    Severity.HIGH,
                    f"The {len(members)} Ingress(es) of IngressGroup {group} agree on every "
                    "load-balancer-wide setting.",
                    kube.ref(members[0]),
                )
            )
    return findings


CHECK = Check(
    name="ingress_group_conflict",
    codes=(CODE,),
    severity=Severity.HIGH,
    title="IngressGroup members disagree",
    explains=(
        "While members of one IngressGroup disagree on a load-balancer setting, the controller "
        "stops reconciling the shared ALB, so no member's change (such as a longer idle "
        "timeout) reaches it."
    ),
    judge=judge,
    templates=("annotation_group_align.sh.j2",),
    step="annotations",
)
