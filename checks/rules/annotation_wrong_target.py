"""ANNOTATION_WRONG_TARGET: an annotation that does not apply to this kind of load balancer or
object.
"""

from __future__ import annotations

import logging

from checks.annotations.judge import WRONG_TARGET, findings_for
from checks.models import Finding, Severity
from checks.registry import Check
from checks.snapshot import Snapshot

logger = logging.getLogger(__name__)
CODE = WRONG_TARGET
SEVERITY = Severity.HIGH


def judge(snapshot: Snapshot) -> list[Finding]:
    return findings_for(
        snapshot,
        CODE,
        SEVERITY,
        "Every load-balancer annotation stands where its controller reads it on {objects}.",
    )


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
