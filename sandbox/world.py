"""A running simulated EKS world: a local AWS endpoint and a local Kubernetes API server
seeded from one scenario, and the settings that point the real clients at them."""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from checks.collect.settings import Connection
from checks.errors import ScenarioError
from sandbox.aws import LocalAws, SeededAws, seed
from sandbox.kube_server import KubeApiServer
from sandbox.scenario import Scenario

logger = logging.getLogger(__name__)


def _rewrite_cluster(scenario: Scenario, seeded: SeededAws) -> list[dict[str, Any]]:
    """The scenario's objects as the cluster would show them once AWS assigned real ids:
    nodes point at the real instances, served objects carry their load balancer's DNS name,
    SecurityGroupPolicies name real security group ids."""
    objects = copy.deepcopy(scenario.cluster)
    hostnames: dict[str, list[str]] = {}
    for lb_name, served in seeded.lb_for.items():
        for ref in served:
            hostnames.setdefault(ref, []).append(seeded.lb_dns_names[lb_name])
    for obj in objects:
        kind = str(obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        if kind == "Node":
            spec = obj.setdefault("spec", {})
            provider = str(spec.get("providerID", ""))
            scenario_id = provider.rsplit("/", 1)[-1]
            if scenario_id in seeded.instance_ids:
                spec["providerID"] = (
                    provider[: -len(scenario_id)] + seeded.instance_ids[scenario_id]
                )
        if kind == "TargetGroupBinding":
            spec = obj.setdefault("spec", {})
            # A scenario names the target group; the cluster holds the ARN AWS assigned.
            named = str(spec.get("targetGroupARN") or spec.pop("targetGroupName", ""))
            if named in seeded.target_group_arns:
                spec["targetGroupARN"] = seeded.target_group_arns[named]
        if kind == "SecurityGroupPolicy":
            groups = (obj.setdefault("spec", {}).get("securityGroups") or {}).get("groupIds")
            # A scenario names its security groups; the policy holds the ids AWS assigned.
            if isinstance(groups, list):
                groups[:] = [seeded.security_group_ids.get(str(g), g) for g in groups]
        ref = f"{kind.lower()}/{meta.get('namespace', '')}/{meta.get('name', '')}"
        if ref in hostnames:
            status = obj.setdefault("status", {})
            status["loadBalancer"] = {"ingress": [{"hostname": h} for h in hostnames[ref]]}
    return objects


class World:
    """Start with :meth:`start` (or as a context manager); :attr:`connection` points the
    collectors at it."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.aws = LocalAws()
        self.kube: KubeApiServer | None = None
        self.seeded: SeededAws | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="eks504-sandbox-")
        self.connection: Connection | None = None
        self._step = "starting"

    def start(self) -> World:
        """Start both servers and seed them; any failure stops what was started and is
        raised as a :class:`ScenarioError` that names the scenario and the step."""
        started = time.monotonic()
        try:
            self._start()
        except BaseException as exc:
            try:
                self.stop()
            except Exception:
                # The failure that stopped the start is the one worth reporting.
                logger.warning("could not stop the half-started sandbox", exc_info=True)
            if isinstance(exc, ScenarioError) or not isinstance(exc, Exception):
                raise
            logger.debug(
                "sandbox for %s failed while %s", self.scenario.id, self._step, exc_info=True
            )
            raise ScenarioError(
                f"Scenario {self._name()} could not be set up while {self._step}: "
                f"{type(exc).__name__}: {exc}.",
                "Check the scenario file against the scenario format; run with -vv for details.",
            ) from exc
        logger.info(
            "sandbox for scenario %s up in %.2f s", self.scenario.id, time.monotonic() - started
        )
        return self

    def _name(self) -> str:
        path = self.scenario.path
        return f"{self.scenario.id} ({path})" if path else self.scenario.id

    def _start(self) -> None:
        self._step = "starting the local AWS endpoint"
        # moto would load its 1,300 stock images after every reset; the seed brings its own.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        endpoint = self.aws.start()
        # moto keeps its models per process: a world started earlier in this process would
        # otherwise leave its resources behind.
        self.aws.reset()
        self._step = "seeding `aws` into the local AWS endpoint"
        self.seeded = seed(
            self.scenario.aws,
            cluster_name=self.scenario.cluster_name,
            endpoint_url=endpoint,
            cluster=self.scenario.cluster,
        )
        self._step = "giving the `cluster` objects their AWS ids"
        objects = _rewrite_cluster(self.scenario, self.seeded)
        self._step = "starting the local Kubernetes API server"
        self.kube = KubeApiServer(
            objects, self.scenario.exec, cluster_name=self.scenario.cluster_name
        )
        self.kube.start()
        kubeconfig = self.kube.write_kubeconfig(Path(self._tmp.name) / "kubeconfig")
        self.connection = Connection(
            kubeconfig=str(kubeconfig),
            aws_endpoint_url=endpoint,
            region=self.seeded.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            cluster=self.scenario.cluster_name,
        )

    def stop(self) -> None:
        if self.kube is not None:
            self.kube.stop()
        self.aws.stop()
        self._tmp.cleanup()

    def __enter__(self) -> World:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
