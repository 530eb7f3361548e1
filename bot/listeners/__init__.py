"""Every listener of the Slack app, registered in one place.

Each listener acknowledges at once and does the slow work in a lazy listener, which Bolt
runs after the acknowledgement has gone back to Slack (well inside Slack's 3 s limit).
Events Slack delivers more than once are dropped first, by a global middleware.
"""

from __future__ import annotations

from dataclasses import replace

from slack_bolt import App

from bot.listeners import actions, apply, mentions, probe, shortcut, slash
from bot.listeners.dedupe import event_dedupe
from bot.listeners.options import Options
from bot.service import Checker


def register(app: App, checker: Checker, options: Options | None = None) -> None:
    options = options or Options()
    service = options.apply or apply.service_from_env(checker)
    options = replace(options, apply=service, offers=options.offers or service.offer)
    prober = probe.Prober(checker, options)

    app.use(event_dedupe(options.ledger))
    slash.register(app, checker, options, prober)
    mentions.register(app, checker, options, prober)
    actions.register(app, checker, options)
    shortcut.register(app, checker, options)
    apply.register(app, service)
    probe.register(app, prober)
