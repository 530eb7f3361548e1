"""Judges a snapshot with every registered check and assembles the report."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from checks import kube
from checks.charts import build_charts
from checks.ladder import build_ladder
from checks.models import Finding, LoadBalancerSummary, Report, Rung, Severity, Status, Target
from checks.registry import Check, all_checks
from checks.snapshot import Gap, Snapshot

logger = logging.getLogger(__name__)

# A pure check over a snapshot takes milliseconds; one that runs this long is stuck.
CHECK_TIME_LIMIT_S = 5.0


def judge_all(
    snapshot: Snapshot, checks: list[Check] | None = None, *, limit_s: float = CHECK_TIME_LIMIT_S
) -> list[Finding]:
    """Every check on ``snapshot``; a check that raises or runs past ``limit_s`` becomes
    ``unknown`` findings saying so, and the others stand."""
    findings: list[Finding] = []
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge")
    for check in checks if checks is not None else all_checks():
        started = time.monotonic()
        future = pool.submit(check.judge, snapshot)
        try:
            produced = future.result(timeout=limit_s)
        except FutureTimeout:
            logger.warning("check %s did not finish within %.1f s", check.name, limit_s)
            produced = [
                Finding(
                    code,
                    Status.UNKNOWN,
                    check.severity,
                    f"The {check.title.lower()} check did not finish within {limit_s:g} s.",
                )
                for code in check.codes
            ]
            # The stuck check keeps its thread; the next ones get a fresh one.
            pool.shutdown(wait=False)
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge")
        except Exception as exc:  # one broken check must not take the report down
            logger.warning("check %s failed: %s: %s", check.name, type(exc).__name__, exc)
            logger.debug("check %s traceback", check.name, exc_info=True)
            produced = [
                Finding(
                    code,
                    Status.UNKNOWN,
                    check.severity,
                    f"The {check.title.lower()} check could not finish.",
                    evidence=(f"{type(exc).__name__}: {exc}",),
                )
                for code in check.codes
            ]
        logger.debug(
            "check %s -> %d finding(s) in %.4f s",
            check.name,
            len(produced),
            time.monotonic() - started,
        )
        findings.extend(produced)
    pool.shutdown(wait=False)
    return findings


def _path(snapshot: Snapshot) -> list[str]:
    hops = ["client"]
    for lb in snapshot.load_balancers:
        hops.append(f"{lb.type} LB {lb.name}")
    for proxy in snapshot.proxies:
        ns, name = kube.namespace(proxy.service), kube.name(proxy.service)
        hops.append(f"{proxy.kind} (service {ns}/{name})")
    hops.append(f"service {snapshot.namespace}/{snapshot.service_name}")
    if snapshot.pods:
        hops.append(f"{len(snapshot.pods)} pod(s)")
    return hops


def _ladder(snapshot: Snapshot) -> list[Rung]:
    try:
        return build_ladder(snapshot)
    except Exception as exc:  # the ladder is evidence: without it the findings still stand
        logger.warning("building the timeout ladder failed: %s: %s", type(exc).__name__, exc)
        logger.debug("timeout ladder traceback", exc_info=True)
        return []


NOT_READ = "NOT_READ"
# What each collector area holds, in words; ``{}`` is the gap's resource.
_UNREAD_WHAT = {
    "lb-attributes": "the attributes of load balancer {}",
    "listener-attributes": "the listener attributes of load balancer {}",
    "listeners": "the listeners of load balancer {}",
    "lb-tags": "the tags of load balancer {}",
    "target-groups": "the target groups of load balancer {}",
    "target-group-attributes": "the attributes of target group {}",
    "target-health": "the target health of {}",
    "metrics": "the CloudWatch metrics of load balancer {}",
    "network": "the network of {}",
    "vpc": "the CIDR of {}",
    "subnets": "the subnets of {}",
    "route-tables": "the route tables of {}",
    "network-acls": "the network ACLs of {}",
    "instances": "the EC2 instances in {}",
    "security-groups": "security group(s) {}",
    "prefix-lists": "the entries of prefix list {}",
    "sysctls": "the TCP keepalive settings in the pods of {}",
}


def unread_what(gap: Gap) -> str:
    """What a gap left unread, as a person says it: ``configmaps in web``, ``the network
    ACLs of vpc-1``."""
    if gap.area.startswith("kubernetes:"):
        return gap.resource  # already "configmaps in web"
    return _UNREAD_WHAT.get(gap.area, f"{gap.area} of {{}}").format(gap.resource)


def unread_parts(snapshot: Snapshot, findings: list[Finding]) -> list[Finding]:
    """What the collectors could not read and no finding already says: ``unknown`` is never
    silent, even where no check needed that part."""
    said = " ".join(e for f in findings for e in (f.summary, *f.evidence))
    extra: list[Finding] = []
    for gap in dict.fromkeys(snapshot.gaps):
        if gap.reason in said:
            continue
        extra.append(
            Finding(
                NOT_READ,
                Status.UNKNOWN,
                Severity.INFO,
                f"Could not read {unread_what(gap)}.",
                gap.resource,
                (gap.reason,) + ((f"needs {gap.needs}",) if gap.needs else ()),
            )
        )
        said += " " + gap.reason
    return extra


def build_report(snapshot: Snapshot, checks: list[Check] | None = None) -> Report:
    findings = judge_all(snapshot, checks)
    findings += unread_parts(snapshot, findings)
    return Report(
        target=Target(snapshot.namespace, snapshot.service_name, snapshot.cluster),
        load_balancers=[
            LoadBalancerSummary(
                name=lb.name,
                type=lb.type,
                dns_name=lb.dns_name,
                scheme=lb.scheme,
                serves=lb.serves,
                idle_timeout_s=lb.idle_timeout_s,
            )
            for lb in snapshot.load_balancers
        ],
        findings=findings,
        path=_path(snapshot),
        ladder=_ladder(snapshot),
        generated_at=time.time(),
        window_s=snapshot.window_s,
        charts=build_charts(snapshot, findings),
    )
