"""The keep-alive probe as the Slack app runs it: which bound, which pod, which runner.

The probe (:mod:`checks.collect.probe`) starts a short-lived pod in the cluster that opens
a keep-alive connection to one ready pod of a Service and times the server's close of the
idle connection. It waits at most as long as the layer in front of the pods reuses idle
connections, plus :data:`MARGIN_S`: a server that is still holding the connection then
outlasts that layer, and nothing more is learnt by waiting longer.

The Slack listeners call a :data:`ProbeRunner`; :class:`LiveProbe`, the one wired by
default, reads the Service and its pods and runs the probe pod. Tests inject their own,
since the sandbox's Kubernetes API server runs no container.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from checks.collect.kube import KubeCollector, api_client, translate
from checks.collect.probe import PROBE_IMAGE, probe_target, run_probe
from checks.collect.settings import Connection
from checks.errors import BackendError, NotFoundError
from checks.models import Report, Target
from checks.probe import ProbeResult
from checks.rules import app_keepalive
from checks.rules.app_keepalive import AWS_DEFAULT_IDLE_TIMEOUT_S

logger = logging.getLogger(__name__)

# The finding whose reply offers to measure what it read from the configuration.
PROBED_CODE = app_keepalive.CODE

# Seconds the probe waits past the reuse window, to tell "outlasts it" from "closes with it".
MARGIN_S = 10
# The bound when nothing in front of the pods is known to reuse connections: AWS's idle
# timeout for an ALB or a Classic LB left at its default.
DEFAULT_WINDOW_S = AWS_DEFAULT_IDLE_TIMEOUT_S["application"]
# An ALB's idle timeout goes up to 4000 s; a button value claiming more is not ours.
MAX_WINDOW_S = 4000

_POOLING_LBS = {"application": "the ALB", "classic": "the Classic LB"}
_NGINX_UPSTREAM_SETTING = "upstream-keepalive-timeout"

# runner(connection, target, limit_s): the probe's result, or an Eks504Error.
ProbeRunner = Callable[[Connection, Target, float], ProbeResult]


@dataclass(frozen=True)
class Reuse:
    """How long the layer in front of the pods reuses an idle connection to them."""

    layer: str  # "the ALB", "the Classic LB", "ingress-nginx"
    seconds: int

    def to_value(self) -> dict[str, Any]:
        return {"layer": self.layer, "seconds": self.seconds}

    @classmethod
    def from_value(cls, data: Any) -> Reuse | None:
        """A reuse window read back from a button, or None when it is not one of ours."""
        if not isinstance(data, dict):
            return None
        layer, seconds = data.get("layer"), data.get("seconds")
        known = {*_POOLING_LBS.values(), "ingress-nginx"}
        if layer not in known or isinstance(seconds, bool) or not isinstance(seconds, int):
            return None
        if not 1 <= seconds <= MAX_WINDOW_S:
            return None
        return cls(str(layer), seconds)


def reuse_window(report: Report) -> Reuse | None:
    """The longest reuse of idle connections in front of the report's pods, or None.

    From the load balancers (an ALB, a Classic LB; an NLB passes connections through) and
    ingress-nginx's upstream keep-alive in the ladder.
    """
    # Limitation: a report does not carry a Classic LB's listener protocols, so one with
    # TCP listeners only, which pools nothing, is counted as reusing connections.
    found = [
        Reuse(_POOLING_LBS[lb.type], lb.idle_timeout_s or AWS_DEFAULT_IDLE_TIMEOUT_S[lb.type])
        for lb in report.load_balancers
        if lb.type in _POOLING_LBS
    ]
    found += [
        Reuse("ingress-nginx", round(rung.seconds))
        for rung in report.ladder
        if rung.setting == _NGINX_UPSTREAM_SETTING and rung.seconds
    ]
    found = [r for r in found if 1 <= r.seconds <= MAX_WINDOW_S]
    if not found:
        return None
    return max(found, key=lambda r: r.seconds)


def probe_limit(reuse: Reuse | None) -> float:
    """How long the probe waits for the server to close the idle connection."""
    return float((reuse.seconds if reuse is not None else DEFAULT_WINDOW_S) + MARGIN_S)


@dataclass(frozen=True)
class LiveProbe:
    """Probes one ready pod of the target Service from a pod started in the cluster.

    ``namespace`` None starts the probe pod in the connection's probe namespace;
    ``finish_timeout_s`` None gives the pod time to start, plus the wait.
    """

    namespace: str | None = None
    image: str = PROBE_IMAGE
    finish_timeout_s: float | None = None

    def __call__(self, connection: Connection, target: Target, limit_s: float) -> ProbeResult:
        with api_client(connection) as api:
            service = KubeCollector(api).read_service(target.namespace, target.service)
            pods = _pods(api, target, service)
            pod, port = probe_target(pods, service)
            logger.debug(
                "probing pod %s/%s port %s for %s",
                target.namespace,
                pod.get("metadata", {}).get("name"),
                port,
                target.ask,
            )
            return run_probe(
                api,
                pod,
                port,
                limit_s=limit_s,
                namespace=self.namespace or connection.probe_namespace,
                image=self.image,
                finish_timeout_s=self.finish_timeout_s,
            )


def _pods(api: k8s.ApiClient, target: Target, service: dict[str, Any]) -> list[dict[str, Any]]:
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        raise NotFoundError(
            f"Service {target.ask} selects no pods (it has no selector), so there is no pod "
            "to probe."
        )
    label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    started = time.monotonic()
    try:
        response: Any = k8s.CoreV1Api(api).list_namespaced_pod(
            target.namespace, label_selector=label_selector, _preload_content=False
        )
        data = json.loads(response.data)
    except ApiException as exc:
        logger.info(
            "kubernetes list pods ns=%s -> HTTP %s in %.3f s",
            target.namespace,
            exc.status,
            time.monotonic() - started,
        )
        raise translate(exc, "list", "pods", target.namespace) from exc
    except (HTTPError, OSError) as exc:
        raise BackendError(f"Cannot reach the Kubernetes API to list pods: {exc}.") from exc
    pods: list[dict[str, Any]] = list(data.get("items") or [])
    logger.info(
        "kubernetes list pods ns=%s -> %d in %.3f s",
        target.namespace,
        len(pods),
        time.monotonic() - started,
    )
    return pods
