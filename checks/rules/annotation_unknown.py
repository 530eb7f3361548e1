"""ANNOTATION_UNKNOWN: an annotation under a load-balancer prefix that no controller reads."""

from __future__ import annotations

import logging

from checks import kube
from checks.annotations.judge import UNKNOWN, evaluate
from checks.models import Finding, Severity, Status
from checks.registry import Check
from checks.snapshot import Snapshot

logger = logging.getLogger(__name__)
CODE = UNKNOWN
SEVERITY = Severity.MEDIUM


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
            f"Every load-balancer annotation is one a controller reads on {', '.join(objects)}.",
            objects[0],
        )
    ]


CHECK = Check(
    name="annotation_unknown",
    codes=(CODE,),
    severity=SEVERITY,
    title="Annotation no controller reads",
    explains=(
        "A misspelt or invented key is silently ignored, so the setting it was meant to "
        "change (often the idle timeout) keeps its default."
    ),
    judge=judge,
    templates=("annotation_rename.sh.j2",),
    step="annotations",
)
