"""`make bench`: how long a check takes and how much memory it needs, per bundled scenario.

Each scenario's sandbox is started once; the check (collect over HTTP, then judge) runs
several times uncached, and the median and worst wall times are printed with the process's
peak resident memory. Judging alone (no I/O) is timed separately.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time

from bot.cache import MemoryCache
from bot.service import LiveChecker
from checks.collect.snapshot import collect
from checks.lint import lint
from checks.models import Target
from checks.run import build_report
from sandbox.scenario import BUNDLED_DIR, load
from sandbox.world import World

RUNS = 5
# The targets: an answer within a few seconds of the acknowledgement (collect over HTTP and
# judge), judging alone cheap enough to re-run at will, a cached answer at once, and a
# process that fits a small pod.
TARGET_CHECK_S = 2.0
TARGET_JUDGE_S = 0.1
TARGET_CACHED_S = 0.05
TARGET_PEAK_MIB = 512
# `eks504 lint` in CI: a large repository's manifests, with many annotations no controller
# reads (each one gets a spelling suggestion), judged within a few seconds.
LINT_SERVICES = 200
LINT_ANNOTATIONS_EACH = 10
TARGET_LINT_S = 5.0


def _lint_world() -> list[tuple[str, int, dict[str, object]]]:
    docs: list[tuple[str, int, dict[str, object]]] = []
    for i in range(LINT_SERVICES):
        annotations = {
            f"service.beta.kubernetes.io/aws-load-balancer-option-{i}-{j}": "x"
            for j in range(LINT_ANNOTATIONS_EACH)
        }
        annotations["service.beta.kubernetes.io/aws-load-balancer-conection-idle-timeout"] = "60"
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"web-{i}", "namespace": "shop", "annotations": annotations},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": f"web-{i}"},
                "ports": [{"port": 80}],
            },
        }
        docs.append((f"svc-{i}.yaml", 1, service))
    return docs


def _lint_seconds() -> float:
    docs = _lint_world()
    started = time.perf_counter()
    findings = lint(docs).findings
    elapsed = time.perf_counter() - started
    assert len(findings) >= LINT_SERVICES * LINT_ANNOTATIONS_EACH
    return elapsed


def main() -> int:
    rows = []
    for path in sorted(BUNDLED_DIR.glob("*.yaml")):
        scenario = load(path)
        namespace, service = scenario.ask.split("/")
        with World(scenario) as world:
            assert world.connection is not None
            checker = LiveChecker(world.connection, MemoryCache())
            walls = []
            target = Target(namespace, service, scenario.cluster_name)
            for _ in range(RUNS):
                started = time.perf_counter()
                checker.check(target, fresh=True)
                walls.append(time.perf_counter() - started)
            started = time.perf_counter()
            cached = checker.check(target)
            cached_s = time.perf_counter() - started
            assert cached.cache_hit
            snapshot = collect(namespace, service, world.connection)
            judge_started = time.perf_counter()
            for _ in range(RUNS):
                build_report(snapshot)
            judge_s = (time.perf_counter() - judge_started) / RUNS
        rows.append((path.stem, statistics.median(walls), max(walls), judge_s, cached_s))
    lint_s = _lint_seconds()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'scenario':45} {'check median':>13} {'check max':>10} {'judge':>9} {'cached':>9}")
    for name, median, worst, judge_s, cached_s in rows:
        print(
            f"{name:45} {median:12.3f}s {worst:9.3f}s {judge_s * 1000:7.1f}ms "
            f"{cached_s * 1000:7.1f}ms"
        )
    print(
        f"lint of {LINT_SERVICES} Services with {LINT_ANNOTATIONS_EACH + 1} unknown annotations "
        f"each: {lint_s:.3f}s"
    )
    print(f"peak resident memory of the whole run: {peak_mib:.0f} MiB")
    verdicts = [
        ("check median", max(r[1] for r in rows), TARGET_CHECK_S, "s"),
        ("judge", max(r[3] for r in rows), TARGET_JUDGE_S, "s"),
        ("cached answer", max(r[4] for r in rows), TARGET_CACHED_S, "s"),
        ("peak memory", peak_mib, TARGET_PEAK_MIB, "MiB"),
        ("lint at scale", lint_s, TARGET_LINT_S, "s"),
    ]
    missed = False
    for label, worst, target, unit in verdicts:
        ok = worst <= target
        missed |= not ok
        mark = "met   " if ok else "MISSED"
        print(f"{mark} {label}: worst {worst:.3f} {unit} (target {target} {unit})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
