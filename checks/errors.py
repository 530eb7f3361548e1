"""The project's exceptions.

::

    Eks504Error                       anything eks504 reports to a user in plain words
    +-- InputError                    what the user typed cannot be a target
    |   +-- ConfigError               (bot.config) the configuration file is wrong
    |   `-- UnknownClusterError       (bot.clusters) no cluster of that name is configured
    +-- NotFoundError                 the namespace or Service does not exist
    +-- AccessError                   Kubernetes or AWS refused; ``needs`` names the permission
    +-- NotServedError                no load balancer serves the Service
    +-- BackendError                  a cluster or AWS endpoint failed or could not be reached
    +-- ApplyError                    (bot.apply) a one-click fix was refused or failed
    +-- ScenarioError                 a scenario file cannot be loaded
    `-- OutputError                   (bot.output) the report cannot be written

Third-party errors (botocore's ``ClientError``, the Kubernetes client's ``ApiException``)
are translated once, where the collectors call out, with ``raise ... from exc``. Every
message says what failed and what to do.
"""

from __future__ import annotations


class Eks504Error(Exception):
    """Base class: ``str(err)`` is a sentence for a user, ``hint`` what to do next."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class InputError(Eks504Error):
    pass


class NotFoundError(Eks504Error):
    pass


class AccessError(Eks504Error):
    def __init__(self, message: str, needs: str, hint: str = "") -> None:
        super().__init__(message, hint or f"Grant {needs} and ask again.")
        self.needs = needs


class NotServedError(Eks504Error):
    pass


class BackendError(Eks504Error):
    pass


class ScenarioError(Eks504Error):
    pass
