"""ANNOTATION_WRONG_TARGET: an annotation that does not apply to this kind of load balancer or
object.
"""

from __future__ import annotations

import logging

from checks import kube
from checks.annotations.judge import WRONG_TARGET, evaluate
from checks.models import Finding, Severity, Status
from checks.registry import Check
from checks.snapshot import Snapshot

logger = logging.getLogger(__name__)
CODE = WRONG_TARGET
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
            f"Every load-balancer annotation stands where its controller reads it on "
            f"{', '.join(objects)}.",
            objects[0],
        )
    ]


CHECK = Check(
    name="annotation_wrong_target",
    codes=(CODE,),
    severity=SEVERITY,
    title="Annotation on the wrong kind of object or load balancer",
    explains=(
        "A key that the controller does not read where it stands changes nothing: the health "
        "check path, idle timeout or scheme it names stays at its default."
    ),
    judge=judge,
    templates=("annotation_rename.sh.j2", "annotation_set.j2", "annotation_yaml.j2"),
    step="annotations",
)
