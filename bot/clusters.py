"""One checker per configured cluster, chosen by the target's cluster name."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

from bot.cache import ResultCache
from bot.config import BotConfig
from bot.service import Checker, CheckOutcome, LiveChecker, Progress
from checks.collect.settings import Connection
from checks.errors import InputError
from checks.models import Target

logger = logging.getLogger(__name__)


class UnknownClusterError(InputError):
    pass


class ClusterRouter:
    """A :class:`~bot.service.Checker` that hands each target to its cluster's checker.

    A target without a cluster (``"default"``) goes to ``default``, when there is one.
    """

    def __init__(self, checkers: Mapping[str, Checker], default: str | None = None) -> None:
        if not checkers:
            raise ValueError("at least one cluster is needed")
        if default is not None and default not in checkers:
            raise ValueError(f"default cluster {default!r} has no checker")
        self._checkers = dict(checkers)
        self.default = (
            default
            if default is not None
            else (next(iter(checkers)) if len(checkers) == 1 else None)
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._checkers)

    def _resolve(self, cluster: str, what: str) -> tuple[str, Checker]:
        name = cluster if cluster != "default" else self.default
        checker = self._checkers.get(name) if name is not None else None
        if checker is None or name is None:
            known = ", ".join(self._checkers)
            if name is None:
                raise UnknownClusterError(
                    f"Say which cluster to {what} in.", f"Known clusters: {known}."
                )
            raise UnknownClusterError(
                f"There is no cluster named {name}.", f"Known clusters: {known}."
            )
        return name, checker

    def check(
        self, target: Target, *, fresh: bool = False, progress: Progress | None = None
    ) -> CheckOutcome:
        name, checker = self._resolve(target.cluster, f"check {target.ask}")
        return checker.check(replace(target, cluster=name), fresh=fresh, progress=progress)

    def connection_for(self, name: str) -> Connection:
        """The kube and AWS connection of the cluster ``name`` (``"default"``: the default
        cluster), for what acts on a cluster besides a check: a patch, a probe pod."""
        resolved, checker = self._resolve(name, "act")
        connection = getattr(checker, "connection", None)
        if not isinstance(connection, Connection):
            raise UnknownClusterError(f"Cluster {resolved} has no Kubernetes connection.")
        return connection


def connection_of(checker: Checker, name: str) -> Connection | None:
    """The connection ``checker`` uses for the cluster ``name``, or None when it has none.

    A :class:`ClusterRouter` lends each cluster's; a checker of one cluster lends its own
    for that cluster's name and for ``"default"``.
    """
    if isinstance(checker, ClusterRouter):
        try:
            return checker.connection_for(name)
        except UnknownClusterError as err:
            logger.debug("no connection for cluster %s: %s", name, err)
            return None
    single = getattr(checker, "connection", None)
    if isinstance(single, Connection) and name in ("default", single.cluster):
        return single
    return None


def checkers_from_config(
    config: BotConfig, cache: ResultCache, *, ttl_s: int = 300, window_s: int = 3600
) -> ClusterRouter:
    """One :class:`~bot.service.LiveChecker` per configured cluster, sharing ``cache``."""
    checkers: dict[str, Checker] = {
        name: LiveChecker(cluster.connection(), cache, ttl_s=ttl_s, window_s=window_s)
        for name, cluster in config.clusters.items()
    }
    for name, cluster in config.clusters.items():
        logger.info(
            "cluster %s: context %s, region %s%s",
            name,
            cluster.context or "(current)",
            cluster.region or "(default)",
            f", role {cluster.role_arn}" if cluster.role_arn else "",
        )
    return ClusterRouter(checkers, config.default_cluster)
