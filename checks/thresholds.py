"""Thresholds, limits and AWS defaults the checks share: each has its one home here."""

from __future__ import annotations

# Latency within this many seconds of the idle timeout counts as "at the timeout".
IDLE_TIMEOUT_MARGIN_S = 1.0

# Idle timeout ranges AWS accepts, per load balancer type.
MIN_IDLE_TIMEOUT_S = {"classic": 1, "application": 1, "network": 60}
MAX_IDLE_TIMEOUT_S = {"classic": 4000, "application": 4000, "network": 6000}

# An ALB gives up connecting to a target after this long (Classic LB likewise).
TARGET_CONNECT_TIMEOUT_S = 10.0
