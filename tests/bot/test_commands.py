"""Parsing the text of ``/eks504`` commands and ``@eks504`` mentions."""

from __future__ import annotations

import pytest

from bot.commands import USAGE, Command, escape_mrkdwn, mrkdwn_code, parse
from checks.models import Target

SHOP_WEB = Target(namespace="shop", service="web")


@pytest.mark.parametrize(
    "text",
    [
        "check shop/web",
        "  check   shop/web  ",
        "CHECK shop/web",
        "check web -n shop",
        "check -n shop web",
        "check web --namespace shop",
        "check web --namespace=shop",
        "<@U0123ABC> check shop/web",
        "<@U0123ABC|eks504> check shop/web",
    ],
)
def test_check_forms_name_the_same_target(text: str) -> None:
    assert parse(text) == Command(kind="check", target=SHOP_WEB)


def test_cluster_option_sets_the_targets_cluster() -> None:
    assert parse("check shop/web --cluster prod-eu_1") == Command(
        kind="check", target=Target(namespace="shop", service="web", cluster="prod-eu_1")
    )


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("probe shop/web", SHOP_WEB),
        ("<@U0123ABC> PROBE web -n shop", SHOP_WEB),
        ("probe shop/web --cluster prod", Target("shop", "web", "prod")),
    ],
)
def test_probe_takes_a_target_like_check(text: str, target: Target) -> None:
    assert parse(text) == Command(kind="probe", target=target)


def test_probe_without_a_service_says_what_it_needs() -> None:
    assert first_line(parse("probe")) == (
        "`probe` needs exactly one Service (`NAMESPACE/SERVICE`), got nothing."
    )


def test_usage_names_the_probe_and_that_it_starts_a_pod() -> None:
    assert (
        "• `/eks504 probe NAMESPACE/SERVICE`: measure how long its pods keep an idle "
        "connection open (starts a short-lived pod in the cluster; only where it is turned on)"
    ) in USAGE


def test_slack_auto_link_around_a_name_is_undone() -> None:
    assert parse("check <http://shop/web|shop/web>") == Command(kind="check", target=SHOP_WEB)


def test_longest_valid_names_are_accepted() -> None:
    name = "a" + "-" * 61 + "b"

    assert parse(f"check {name}/{name}") == Command(
        kind="check", target=Target(namespace=name, service=name)
    )


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", "--help", "<@U0123ABC>"])
def test_empty_text_and_help_ask_for_usage(text: str) -> None:
    assert parse(text) == Command(kind="help")


def first_line(command: Command) -> str:
    assert command.kind == "invalid"
    assert command.target is None
    assert command.message.endswith(USAGE)
    return command.message.split("\n")[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "check Shop/web",
            "`Shop` is not a valid namespace name: it has uppercase letters; use at most 63 "
            "lowercase letters, digits or '-', starting and ending with a letter or digit.",
        ),
        (
            "check shop/Web!",
            "`Web!` is not a valid service name: it contains `!`; use at most 63 lowercase "
            "letters, digits or '-', starting and ending with a letter or digit.",
        ),
        (
            "check shop/web-",
            "`web-` is not a valid service name: it starts or ends with `-`; use at most 63 "
            "lowercase letters, digits or '-', starting and ending with a letter or digit.",
        ),
        (
            "check shop/" + "a" * 64,
            "`" + "a" * 64 + "` is not a valid service name: it is 64 characters long; use at "
            "most 63 lowercase letters, digits or '-', starting and ending with a letter or "
            "digit.",
        ),
        (
            "check /web",
            "The namespace name is empty: use at most 63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit.",
        ),
        ("check web", "Which namespace is `web` in? Write `NAMESPACE/web` or add `-n NAMESPACE`."),
        ("check", "`check` needs exactly one Service (`NAMESPACE/SERVICE`), got nothing."),
        ("check a/b c/d", "`check` needs exactly one Service (`NAMESPACE/SERVICE`), got 2 names."),
        ("check a/b/c", "`a/b/c` is not `NAMESPACE/SERVICE`: it has more than one `/`."),
        ("check web -n", "`-n` needs a value after it."),
        ("check web -x shop", "I do not know the option `-x`."),
        (
            "check shop/web -n shop",
            "`shop/web` already names a namespace; drop `-n` or the `NAMESPACE/` part.",
        ),
        ("status shop/web", "I do not know the command `status`."),
        (
            "check shop/web --cluster 9lives",
            "`9lives` is not a valid cluster name: use at most 100 letters, digits, '-' or '_', "
            "starting with a letter (an EKS cluster name).",
        ),
    ],
)
def test_invalid_input_gets_a_specific_message_then_usage(text: str, message: str) -> None:
    assert first_line(parse(text)) == message


def test_invalid_input_is_escaped_so_it_cannot_ping_anyone() -> None:
    command = parse("check shop/<!channel>")

    line = first_line(command)
    assert line.startswith("`&lt;!channel&gt;` is not a valid service name: it contains ")
    assert "<!channel>" not in command.message


def test_html_escaped_text_from_slack_is_read_as_typed() -> None:
    line = first_line(parse("check shop/a&amp;b"))

    assert line.startswith("`a&amp;b` is not a valid service name: it contains `&amp;`;")


def test_unbalanced_quote_does_not_break_parsing() -> None:
    line = first_line(parse("check 'shop/web"))

    assert line.startswith("`'shop` is not a valid namespace name: it contains `'`")


def test_mrkdwn_code_escapes_backticks_and_shortens() -> None:
    assert mrkdwn_code("a`b<c") == "`a'b&lt;c`"
    assert mrkdwn_code("x" * 100, limit=10) == "`" + "x" * 9 + "…`"


def test_escape_mrkdwn_escapes_ampersand_first() -> None:
    assert escape_mrkdwn("<&>") == "&lt;&amp;&gt;"


@pytest.mark.parametrize("text", ["check `shop/web`", "check *shop/web*", "check\u00a0shop/web"])
def test_slack_formatting_around_the_name_is_ignored(text: str) -> None:
    command = parse(text)
    assert command.kind == "check"
    assert command.target is not None
    assert (command.target.namespace, command.target.service) == ("shop", "web")
