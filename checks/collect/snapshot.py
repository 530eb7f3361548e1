"""Builds a :class:`~checks.snapshot.Snapshot` for one Service: Kubernetes first (to learn
which load balancers serve it), then AWS and the in-pod reads in parallel."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from checks import kube
from checks.collect.aws import (
    AwsCall,
    fetch_metrics,
    fetch_network,
    find_by_target_groups,
    find_load_balancers,
)
from checks.collect.kube import KubeCollector, KubeFacts, api_client
from checks.collect.settings import Connection
from checks.collect.sysctls import read_all
from checks.errors import AccessError, BackendError, NotServedError
from checks.snapshot import Gap, KubeObject, LoadBalancer, MetricSeries, Snapshot, Sysctls

logger = logging.getLogger(__name__)

# progress(step, state) with state "running" or "done"
Progress = Callable[[str, str], None]


def _hostnames(obj: KubeObject) -> list[str]:
    ingress = (kube.status(obj).get("loadBalancer") or {}).get("ingress") or []
    return [str(i["hostname"]) for i in ingress if isinstance(i, dict) and i.get("hostname")]


def served_by(facts: KubeFacts) -> dict[str, list[str]]:
    """Object ref ("service/ns/name", "ingress/ns/name") -> DNS names in its status."""
    served: dict[str, list[str]] = {}
    if kube.spec(facts.service).get("type") == "LoadBalancer":
        served[kube.ref(facts.service)] = _hostnames(facts.service)
    proxied = {kube.ref(i) for proxy in facts.proxies for i in proxy.ingresses}
    for ingress in facts.ingresses:
        if kube.ref(ingress) not in proxied:
            served[kube.ref(ingress)] = _hostnames(ingress)
    for proxy in facts.proxies:
        served[kube.ref(proxy.service)] = _hostnames(proxy.service)
    return served


def _not_served_message(facts: KubeFacts, namespace: str, name: str) -> NotServedError:
    kind = kube.spec(facts.service).get("type", "ClusterIP")
    if kind == "LoadBalancer":
        return NotServedError(
            f"Service `{namespace}/{name}` is of type LoadBalancer but has no load balancer "
            "address yet.",
            f"Look at `kubectl describe service -n {namespace} {name}` for the controller's "
            "events (subnets, permissions, quota).",
        )
    if facts.ingresses:
        names = ", ".join(kube.name(i) for i in facts.ingresses)
        return NotServedError(
            f"The Ingress(es) routing to `{namespace}/{name}` ({names}) have no load balancer "
            "address yet.",
            f"Look at `kubectl describe ingress -n {namespace}` for the controller's events.",
        )
    return NotServedError(
        f"Service `{namespace}/{name}` is of type {kind} and no Ingress routes to it, so no "
        "AWS load balancer serves it.",
        "Ask about the Service that the load balancer targets (the one of type LoadBalancer, "
        "or the backend of the Ingress).",
    )


def collect(
    namespace: str,
    name: str,
    connection: Connection,
    *,
    window_s: int = 3600,
    progress: Progress | None = None,
) -> Snapshot:
    def step(label: str, state: str) -> None:
        if progress is not None:
            progress(label, state)

    started = time.monotonic()
    step("resolving", "running")
    api = api_client(connection)
    facts = KubeCollector(api).fetch(namespace, name)
    served = served_by(facts)
    bindings = {
        str(kube.spec(b).get("targetGroupARN", "")): kube.ref(b)
        for b in facts.target_group_bindings
        if kube.spec(b).get("targetGroupARN")
    }
    if not any(served.values()) and not bindings:
        raise _not_served_message(facts, namespace, name)
    call = AwsCall(connection)
    gaps: list[Gap] = list(facts.gaps)
    hostnames = {h for names in served.values() for h in names}
    lbs = find_load_balancers(call, hostnames, gaps)
    # A TargetGroupBinding attaches the Service to a load balancer managed outside the cluster.
    for tg_arn, lb in find_by_target_groups(call, bindings, gaps).items():
        if all(known.arn != lb.arn for known in lbs):
            lbs.append(lb)
        served.setdefault(bindings[tg_arn], []).append(lb.dns_name)
    if not lbs:
        raise NotServedError(
            f"No load balancer in {call.region} has the DNS name "
            f"{', '.join(sorted(hostnames))} that `{namespace}/{name}` shows.",
            "Check the AWS account and region (AWS_PROFILE, AWS_REGION) match the cluster's.",
        )
    lbs = [_with_serves(lb, served) for lb in lbs]
    step("resolving", "done")

    node_names = sorted(
        {str(kube.spec(p).get("nodeName")) for p in facts.pods if kube.spec(p).get("nodeName")}
    )
    instance_ids = {kube.node_instance_id(n) for n in facts.nodes} - {""}
    for lb in lbs:
        instance_ids.update(t.id for t in lb.instances)
        for tg in lb.target_groups:
            if tg.target_type == "instance":
                instance_ids.update(t.id for t in tg.targets)
    sg_ids = {g for lb in lbs for g in lb.security_group_ids}
    # Pods under a SecurityGroupPolicy carry its groups instead of their node's.
    for policy in facts.security_group_policies:
        groups = (kube.spec(policy).get("securityGroups") or {}).get("groupIds") or []
        sg_ids.update(str(g) for g in groups)

    step("metrics", "running")
    step("keep-alive", "running")
    step("network", "running")
    deadline = started + connection.deadline_s
    # Each worker notes its gaps in a list of its own, taken only when it finishes in time:
    # one still running after the deadline must not change the report being written.
    network_gaps: list[Gap] = []
    metrics_gaps: dict[str, list[Gap]] = {lb.name: [] for lb in lbs}
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="collect")
    network_f = pool.submit(fetch_network, call, lbs[0].vpc_id, instance_ids, sg_ids, network_gaps)
    metrics_f = {
        lb.name: pool.submit(fetch_metrics, call, lb, window_s, metrics_gaps[lb.name]) for lb in lbs
    }
    sysctl_f = pool.submit(read_all, api, facts.pods, node_names, connection, stop)

    def late(area: str, resource: str) -> Gap:
        logger.warning("%s for %s did not finish before the report's deadline", area, resource)
        return Gap(
            area=area,
            resource=resource,
            reason=f"did not finish within the report's deadline of {connection.deadline_s:.0f} s",
        )

    metrics: dict[str, dict[str, MetricSeries]] = {}
    for lb_name, future in metrics_f.items():
        try:
            metrics[lb_name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            gaps.extend(metrics_gaps[lb_name])
        except FutureTimeout:
            gaps.append(late("metrics", lb_name))
    step("metrics", "done")
    sysctls: dict[str, Sysctls] = {}
    try:
        sysctls = sysctl_f.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        gaps.append(late("sysctls", f"{namespace}/{name}"))
    except Exception as exc:  # a broken exec layer must not sink the report
        logger.warning("reading sysctls failed: %s", exc)
        gaps.append(Gap(area="sysctls", resource=f"{namespace}/{name}", reason=str(exc)))
    step("keep-alive", "done")
    network = None
    try:
        network = network_f.result(timeout=max(0.0, deadline - time.monotonic()))
        gaps.extend(network_gaps)
    except FutureTimeout:
        gaps.append(late("network", lbs[0].vpc_id))
    except (AccessError, BackendError) as err:
        gaps.append(Gap(area="network", resource=lbs[0].vpc_id, reason=str(err)))
    step("network", "done")
    # What is still running finishes in the background; the report does not wait for it,
    # and the pod and node reads give up at their next call, quietly.
    stop.set()
    pool.shutdown(wait=False, cancel_futures=True)

    snapshot = Snapshot(
        namespace=namespace,
        service_name=name,
        cluster=connection.cluster,
        window_s=window_s,
        service=facts.service,
        ingresses=facts.ingresses,
        pods=facts.pods,
        nodes=facts.nodes,
        configmaps=facts.configmaps,
        workloads=facts.workloads,
        endpoint_slices=facts.endpoint_slices,
        ingress_classes=facts.ingress_classes,
        events=facts.events,
        proxies=facts.proxies,
        ingress_class_params=facts.ingress_class_params,
        target_group_bindings=facts.target_group_bindings,
        security_group_policies=facts.security_group_policies,
        service_accounts=facts.service_accounts,
        region=call.region,
        load_balancers=lbs,
        metrics=metrics,
        sysctls=sysctls,
        gaps=gaps,
    )
    if network is not None:
        snapshot.vpc_cidr = network.vpc_cidr
        snapshot.subnets = network.subnets
        snapshot.network_acls = network.network_acls
        snapshot.security_groups = network.security_groups
        snapshot.instances = network.instances
        snapshot.prefix_lists = network.prefix_lists
    logger.info(
        "collected %s/%s: %d load balancer(s), %d pod(s), %d gap(s) in %.2f s",
        namespace,
        name,
        len(lbs),
        len(facts.pods),
        len(gaps),
        time.monotonic() - started,
    )
    return snapshot


def _with_serves(lb: LoadBalancer, served: dict[str, list[str]]) -> LoadBalancer:
    from dataclasses import replace

    refs = [
        ref for ref, names in served.items() if lb.dns_name.lower() in (n.lower() for n in names)
    ]
    return replace(lb, serves=", ".join(refs))
