"""Names: the ones a user types for a check (a namespace, a Service, a cluster) and the
ones the API server requires of objects (held against manifests by :mod:`checks.lint`).

The rules live here once, in words as well as patterns, so that the Slack app, the CLI,
lint and the scenario loader accept the same names and say the same thing about the others.
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
# A DNS-1035 label, what Kubernetes requires of a Service's name.
DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
SERVICE_NAME_RULE = (
    "a DNS label (at most 63 lowercase letters, digits or '-', starting with a letter and "
    "ending with a letter or digit)"
)
NAMESPACE_NAME_RULE = (
    "a DNS label (at most 63 lowercase letters, digits or '-', starting and ending with a "
    "letter or digit)"
)
# A DNS-1123 subdomain, what Kubernetes requires of most other objects' names.
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_SUBDOMAIN_MAX = 253
SUBDOMAIN_RULE = (
    "a DNS subdomain (at most 253 lowercase letters, digits, '-' or '.', each part between "
    "dots starting and ending with a letter or digit)"
)
# An EKS cluster name.
CLUSTER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")
CLUSTER_RULE = (
    "use at most 100 letters, digits, '-' or '_', starting with a letter (an EKS cluster name)"
)


def is_label(value: str) -> bool:
    """Whether ``value`` can name a namespace or a Service."""
    return len(value) <= DNS_LABEL_MAX and DNS_LABEL.fullmatch(value) is not None


def is_service_name(value: str) -> bool:
    """Whether the API server takes ``value`` as a Service's name."""
    return len(value) <= DNS_LABEL_MAX and DNS_1035_LABEL.fullmatch(value) is not None


def is_subdomain(value: str) -> bool:
    """Whether ``value`` is a DNS subdomain, as most objects' names must be."""
    return len(value) <= DNS_SUBDOMAIN_MAX and DNS_SUBDOMAIN.fullmatch(value) is not None


def is_cluster_name(value: str) -> bool:
    """Whether ``value`` can name a cluster."""
    return CLUSTER_NAME.fullmatch(value) is not None
