"""Every listener of the Slack app, registered in one place.

Each listener acknowledges at once and does the slow work in a lazy listener, which Bolt
runs after the acknowledgement has gone back to Slack (well inside Slack's 3 s limit).
Events Slack delivers more than once are dropped first, by a global middleware.
"""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, apply, mentions, shortcut, slash
from bot.listeners.dedupe import event_dedupe
from bot.listeners.options import Options
from bot.service import Checker


def register(app: App, checker: Checker, options: Options | None = None) -> None:
    options = options or Options()
    app.use(event_dedupe(options.ledger))
    slash.register(app, checker, options)
    mentions.register(app, checker, options)
    actions.register(app, checker, options)
    shortcut.register(app, checker, options)
    apply.register(app, checker)
