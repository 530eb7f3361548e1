"""ANNOTATION_OUT_OF_RANGE: an annotation value outside what AWS accepts."""

from __future__ import annotations

import logging

from checks import kube
from checks.annotations.judge import OUT_OF_RANGE, evaluate
from checks.models import Finding, Severity, Status
from checks.registry import Check
from checks.snapshot import Snapshot

logger = logging.getLogger(__name__)
CODE = OUT_OF_RANGE
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
            f"Every load-balancer annotation value is within what AWS accepts on "
            f"{', '.join(objects)}.",
            objects[0],
        )
    ]


CHECK = Check(
    name="annotation_out_of_range",
    codes=(CODE,),
    severity=SEVERITY,
    title="Annotation value outside what AWS accepts",
    explains=(
        "AWS refuses the whole change when one value is out of range, so the load balancer "
        "keeps its old settings and the controller keeps failing."
    ),
    judge=judge,
    templates=("annotation_yaml.j2",),
    step="annotations",
)
