"""ANNOTATION_MALFORMED: an annotation whose key or value cannot be parsed."""

from __future__ import annotations

import logging

from checks import kube
from checks.annotations.judge import MALFORMED, evaluate
from checks.models import Finding, Severity, Status
from checks.registry import Check
from checks.snapshot import Snapshot

logger = logging.getLogger(__name__)
CODE = MALFORMED
SEVERITY = Severity.HIGH


def judge(snapshot: Snapshot) -> list[Finding]:
    evaluation = evaluate(snapshot)
    findings = [i.finding(SEVERITY) for i in evaluation.issues if i.code == CODE]
    if findings or not evaluation.judged:
        return findings
    objects = sorted({kube.ref(obj) for obj, _ in evaluation.judged})
    return [
        Finding(
            CODE,
            Status.PASS,
            SEVERITY,
            f"Every load-balancer annotation parses on {', '.join(objects)}.",
            objects[0],
        )
    ]


CHECK = Check(
    name="annotation_malformed",
    codes=(CODE,),
    severity=SEVERITY,
    title="Annotation that cannot be parsed",
    explains=(
        "The controller rejects a value it cannot parse and stops reconciling the load "
        "balancer, or AWS rejects the change; either way the setting is not applied."
    ),
    judge=judge,
    templates=("annotation_yaml.j2", "annotation_rename.sh.j2"),
    step="annotations",
)
