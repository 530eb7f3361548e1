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
from checks.models import Target
from checks.run import build_report
from sandbox.scenario import BUNDLED_DIR, load
from sandbox.world import World

RUNS = 5


def main() -> int:
    rows = []
    for path in sorted(BUNDLED_DIR.glob("*.yaml")):
        scenario = load(path)
        namespace, service = scenario.ask.split("/")
        with World(scenario) as world:
            assert world.connection is not None
            checker = LiveChecker(world.connection, MemoryCache())
            walls = []
            for _ in range(RUNS):
                started = time.perf_counter()
                checker.check(Target(namespace, service, scenario.cluster_name), fresh=True)
                walls.append(time.perf_counter() - started)
            snapshot = collect(namespace, service, world.connection)
            judge_started = time.perf_counter()
            for _ in range(RUNS):
                build_report(snapshot)
            judge_s = (time.perf_counter() - judge_started) / RUNS
        rows.append((path.stem, statistics.median(walls), max(walls), judge_s))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'scenario':45} {'check median':>13} {'check max':>10} {'judge':>9}")
    for name, median, worst, judge_s in rows:
        print(f"{name:45} {median:12.3f}s {worst:9.3f}s {judge_s * 1000:7.1f}ms")
    print(f"peak resident memory of the whole run: {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
