"""The names a user types for a check: a Kubernetes namespace or Service, and a cluster.

The rules live here once, in words as well as patterns, so that the Slack app, the CLI and
the scenario loader accept the same names and say the same thing about the others.
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

# A DNS-1123 label, what Kubernetes requires of a namespace (and accepts for a Service).
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_LABEL_MAX = 63
LABEL_RULE = (
    "use at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit"
)
# An EKS cluster name.
CLUSTER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")
CLUSTER_RULE = (
    "use at most 100 letters, digits, '-' or '_', starting with a letter (an EKS cluster name)"
)


def is_label(value: str) -> bool:
    """Whether ``value`` can name a namespace or a Service."""
    return len(value) <= DNS_LABEL_MAX and DNS_LABEL.fullmatch(value) is not None


def is_cluster_name(value: str) -> bool:
    """Whether ``value`` can name a cluster."""
    return CLUSTER_NAME.fullmatch(value) is not None
