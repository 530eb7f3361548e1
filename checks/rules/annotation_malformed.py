"""ANNOTATION_MALFORMED: an annotation whose key or value cannot be parsed."""

from __future__ import annotations

import logging

from checks.annotations.judge import MALFORMED, findings_for
from checks.models import Finding, Severity
from checks.registry import Check
from checks.snapshot import Snapshot

logger = logging.getLogger(__name__)
CODE = MALFORMED
SEVERITY = Severity.HIGH


def judge(snapshot: Snapshot) -> list[Finding]:
    return findings_for(
        snapshot,
        CODE,
        SEVERITY,
        "Every load-balancer annotation parses on {objects}.",
    )


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
