"""ANNOTATION_OUT_OF_RANGE: an annotation value outside what AWS accepts."""

from __future__ import annotations

import logging

from checks.annotations.judge import OUT_OF_RANGE, findings_for
from checks.models import Finding, Severity
from checks.registry import Check
from checks.snapshot import Snapshot

logger = logging.getLogger(__name__)
CODE = OUT_OF_RANGE
SEVERITY = Severity.HIGH


def judge(snapshot: Snapshot) -> list[Finding]:
    return findings_for(
        snapshot,
        CODE,
        SEVERITY,
        "Every load-balancer annotation value is within what AWS accepts on {objects}.",
    )


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
