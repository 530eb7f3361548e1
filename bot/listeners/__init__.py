"""Every listener of the Slack app, registered in one place.

Each listener acknowledges at once and does the slow work in a lazy listener, which Bolt
runs after the acknowledgement has gone back to Slack (well inside Slack's 3 s limit).
"""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, mentions, slash
from bot.service import Checker


def register(app: App, checker: Checker) -> None:
    slash.register(app, checker)
    mentions.register(app, checker)
    actions.register(app, checker)
