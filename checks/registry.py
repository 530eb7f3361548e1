"""The one place checks are found.

Each module under ``checks.rules`` defines ``CHECK = Check(...)``; :func:`all_checks`
imports them all, so adding a check is adding a module. A check is a pure function of a
:class:`~checks.snapshot.Snapshot` that returns findings.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from checks.models import Finding, Severity
from checks.snapshot import Snapshot

logger = logging.getLogger(__name__)

Judge = Callable[[Snapshot], list[Finding]]


@dataclass(frozen=True)
class Check:
    """A check and its metadata, kept together.

    ``codes`` are the stable finding codes it may emit; ``explains`` says why the condition
    leads to a 504/502; ``templates`` names the fix templates it renders.
    """

    name: str
    codes: tuple[str, ...]
    severity: Severity
    title: str
    explains: str
    judge: Judge
    templates: tuple[str, ...] = ()
    # Steps of the report this check belongs to, shown as progress in Slack.
    step: str = "load balancer"


def all_checks() -> list[Check]:
    import checks.rules as rules_pkg

    found: list[Check] = []
    for info in sorted(pkgutil.iter_modules(rules_pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{rules_pkg.__name__}.{info.name}")
        check = getattr(module, "CHECK", None)
        if isinstance(check, Check):
            found.append(check)
    logger.debug("registry found %d checks", len(found))
    return found
