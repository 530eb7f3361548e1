"""ANNOTATION_UNKNOWN: an annotation under a load-balancer prefix that no controller reads."""

from __future__ import annotations

import logging

from checks.annotations.judge import UNKNOWN, findings_for
from checks.models import Finding, Severity
from checks.registry import Check
from checks.snapshot import Snapshot

logger = logging.getLogger(__name__)
CODE = UNKNOWN
SEVERITY = Severity.MEDIUM


def judge(snapshot: Snapshot) -> list[Finding]:
    return findings_for(
        snapshot,
        CODE,
        SEVERITY,
        "Every load-balancer annotation is one a controller reads on {objects}.",
    )


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
