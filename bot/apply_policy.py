"""Who may apply a fix from Slack: listed Slack users, and members of listed user groups.

With nobody listed, no Apply button is shown at all. The lists come from the ``apply:``
section of the configuration file (see :mod:`bot.config`); where the file has none, from
the environment: ``EKS504_APPLY_USERS`` (user ids such as ``U012AB3CD``, comma-separated)
and ``EKS504_APPLY_GROUPS`` (user group ids such as ``S0614TZR7``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)

USERS_ENV = "EKS504_APPLY_USERS"
GROUPS_ENV = "EKS504_APPLY_GROUPS"

# Slack user ids start with U (or W on Enterprise Grid); user group ids with S.
USER_ID = re.compile(r"[UW][A-Z0-9]+")
GROUP_ID = re.compile(r"S[A-Z0-9]+")

# Looks up the members of a user group; raises LookupError when Slack cannot tell.
GroupMembers = Callable[[str], Iterable[str]]


@dataclass(frozen=True)
class ApplyPolicy:
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    @property
    def allows_anyone(self) -> bool:
        return bool(self.users or self.groups)

    def allows(self, user: str, members: GroupMembers) -> bool:
        """Whether ``user`` may apply: listed by id, or a member of a listed group.

        A group whose members cannot be read counts as not granting, so an outage at
        Slack never widens who may change the cluster.
        """
        if not user:
            return False
        if user in self.users:
            return True
        for group in sorted(self.groups):
            try:
                if user in set(members(group)):
                    return True
            except LookupError as err:
                logger.warning("could not read the members of user group %s: %s", group, err)
        return False


def _ids(raw: str, pattern: re.Pattern[str], what: str) -> frozenset[str]:
    ids: set[str] = set()
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        if pattern.fullmatch(item):
            ids.add(item)
        else:
            logger.warning("ignored %r in the apply policy: not a Slack %s id", item, what)
    return frozenset(ids)


def policy_from_env(env: Mapping[str, str] = os.environ) -> ApplyPolicy:
    """The policy from ``EKS504_APPLY_USERS`` and ``EKS504_APPLY_GROUPS``."""
    policy = ApplyPolicy(
        users=_ids(env.get(USERS_ENV, ""), USER_ID, "user"),
        groups=_ids(env.get(GROUPS_ENV, ""), GROUP_ID, "user group"),
    )
    logger.debug(
        "apply policy: %d user(s), %d user group(s)", len(policy.users), len(policy.groups)
    )
    return policy
