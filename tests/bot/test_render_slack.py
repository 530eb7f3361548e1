"""Block Kit rendering: content, escaping, and Slack's limits on huge reports."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.render_slack import (
    MAX_BLOCKS,
    MAX_BUTTON_TEXT,
    MAX_FALLBACK_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    RERUN_ACTION_ID,
    SlackMessages,
    pack,
    render,
    render_error,
    to_json,
)
from checks.errors import AccessError, NotFoundError
from checks.models import Finding, Fix, LoadBalancerSummary, Report, Severity, Status, Target

TARGET = Target(namespace="shop", service="web")
LB = LoadBalancerSummary(
    name="a1b2c3d4e5",
    type="classic",
    dns_name="a1b2c3d4e5-123.us-east-1.elb.amazonaws.com",
    scheme="internet-facing",
    serves="service/shop/web",
    idle_timeout_s=60,
)


def finding(code: str, status: Status, **fields: Any) -> Finding:
    defaults: dict[str, Any] = {"severity": Severity.HIGH, "summary": f"{code} summary"}
    defaults.update(fields)
    return Finding(code=code, status=status, **defaults)


def report(*findings: Finding, lbs: list[LoadBalancerSummary] | None = None) -> Report:
    return Report(
        target=TARGET,
        load_balancers=[LB] if lbs is None else lbs,
        findings=list(findings),
        path=["Classic LB a1b2c3d4e5", "NodePort 31080", "pod web-1:8080"],
    )


def all_mrkdwn(message: dict[str, Any]) -> list[str]:
    """Every mrkdwn string of a message: fallback text, sections and contexts."""
    texts = [message["text"]]
    for block in message["blocks"]:
        if block["type"] == "section":
            texts.append(block["text"]["text"])
        elif block["type"] == "context":
            texts += [e["text"] for e in block["elements"]]
    return texts


def section_texts(message: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]


def code_bodies(message: dict[str, Any]) -> list[str]:
    return [
        text.removeprefix("```\n").removesuffix("\n```")
        for text in section_texts(message)
        if text.startswith("```\n")
    ]


def assert_within_limits(message: dict[str, Any]) -> None:
    assert 0 < len(message["text"]) <= MAX_FALLBACK_TEXT
    assert 0 < len(message["blocks"]) <= MAX_BLOCKS
    for block in message["blocks"]:
        kind = block["type"]
        if kind == "section":
            assert 0 < len(block["text"]["text"]) <= MAX_SECTION_TEXT
        elif kind == "header":
            assert 0 < len(block["text"]["text"]) <= MAX_HEADER_TEXT
        elif kind == "context":
            assert all(0 < len(e["text"]) <= MAX_SECTION_TEXT for e in block["elements"])
        elif kind == "actions":
            for element in block["elements"]:
                assert 0 < len(element["text"]["text"]) <= MAX_BUTTON_TEXT
                assert len(element["value"]) <= 2000
        else:
            assert kind == "divider"


_UNESCAPED = re.compile(r"[<>]|&(?!amp;|lt;|gt;)")


def assert_escaped(message: dict[str, Any]) -> None:
    for text in all_mrkdwn(message):
        assert not _UNESCAPED.search(text), text


# ---------------------------------------------------------------------------
# Content


def test_parent_states_verdict_load_balancer_cache_age_and_rerun_button() -> None:
    messages = render(
        report(
            finding("IDLE_TIMEOUT_REACHED", Status.FAIL),
            finding("TARGETS_UNHEALTHY", Status.FAIL, severity=Severity.CRITICAL),
            finding("TERMINATION_RACE", Status.WARN),
            finding("SG_BLOCKS_TRAFFIC", Status.PASS),
        ),
        cache_hit=True,
        age_s=41.6,
    )

    parent = messages.parent
    assert parent["text"] == (
        ":red_circle: shop/web: 2 failing, 1 warning: "
        "TARGETS_UNHEALTHY, IDLE_TIMEOUT_REACHED, TERMINATION_RACE"
    )
    texts = section_texts(parent)
    assert texts[0] == (
        ":red_circle: *shop/web*: 2 failing, 1 warning: "
        "TARGETS_UNHEALTHY, IDLE_TIMEOUT_REACHED, TERMINATION_RACE"
    )
    assert texts[1] == (
        "*Load balancer*\n• Classic LB `a1b2c3d4e5` · "
        "`a1b2c3d4e5-123.us-east-1.elb.amazonaws.com`"
        " · internet-facing · idle timeout 60 s · serves service/shop/web"
    )
    contexts = [b["elements"][0]["text"] for b in parent["blocks"] if b["type"] == "context"]
    assert contexts == [
        "Path: Classic LB a1b2c3d4e5 → NodePort 31080 → pod web-1:8080",
        "cached 42 s ago · metrics of the last 60 min · details in the thread",
    ]
    (actions,) = [b for b in parent["blocks"] if b["type"] == "actions"]
    (button,) = actions["elements"]
    assert button["action_id"] == RERUN_ACTION_ID
    assert button["text"]["text"] == "Re-run"
    assert json.loads(button["value"]) == {
        "cluster": "default",
        "namespace": "shop",
        "service": "web",
    }


def test_fresh_result_does_not_claim_a_cache_hit() -> None:
    messages = render(report(finding("SG_BLOCKS_TRAFFIC", Status.PASS)), cache_hit=False, age_s=0)

    assert messages.parent["text"] == ":large_green_circle: shop/web: no problem found"
    assert "cached" not in json.dumps(messages.parent)
    assert "checked just now" in json.dumps(messages.parent)


def test_parent_without_load_balancer_says_so() -> None:
    messages = render(report(lbs=[]), cache_hit=False, age_s=0)

    assert "No load balancer found in front of it." in section_texts(messages.parent)


def test_one_reply_per_problem_worst_first_then_closing_reply() -> None:
    messages = render(
        report(
            finding("TERMINATION_RACE", Status.WARN),
            finding("SG_BLOCKS_TRAFFIC", Status.PASS),
            finding("IDLE_TIMEOUT_REACHED", Status.FAIL),
            finding("NACL_BLOCKS_TRAFFIC", Status.UNKNOWN),
        ),
        cache_hit=False,
        age_s=0,
    )

    headers = [r["blocks"][0]["text"]["text"] for r in messages.replies[:-1]]
    assert headers == [
        ":red_circle: IDLE_TIMEOUT_REACHED",
        ":large_orange_circle: TERMINATION_RACE",
    ]
    assert len(messages.replies) == 3


def test_finding_reply_has_status_summary_evidence_and_fixes_as_code_blocks() -> None:
    fixes = (
        Fix(title="Raise the idle timeout", language="shell", text="kubectl annotate svc web\n"),
        Fix(title="Or in the manifest", language="yaml", text="metadata:\n  name: web\n"),
    )
    messages = render(
        report(
            finding(
                "IDLE_TIMEOUT_REACHED",
                Status.FAIL,
                resource="a1b2c3d4e5",
                evidence=("Latency max 60.0 s", "HTTPCode_ELB_5XX 7"),
                fixes=fixes,
            )
        ),
        cache_hit=False,
        age_s=0,
    )

    reply = messages.replies[0]
    assert reply["text"] == ":red_circle: IDLE_TIMEOUT_REACHED (fail): IDLE_TIMEOUT_REACHED summary"
    assert reply["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": ":red_circle: IDLE_TIMEOUT_REACHED", "emoji": True},
    }
    assert section_texts(reply) == [
        "*fail* · high · a1b2c3d4e5\nIDLE_TIMEOUT_REACHED summary",
        "*Evidence*\n• Latency max 60.0 s\n• HTTPCode_ELB_5XX 7",
        "*Fix: Raise the idle timeout* (shell)",
        "```\nkubectl annotate svc web\n```",
        "*Fix: Or in the manifest* (yaml)",
        "```\nmetadata:\n  name: web\n```",
    ]


def test_closing_reply_lists_passed_codes_once_and_unknowns_with_reasons() -> None:
    messages = render(
        report(
            finding("SG_BLOCKS_TRAFFIC", Status.PASS),
            finding("SG_BLOCKS_TRAFFIC", Status.PASS, resource="sg-2"),
            finding("LB_AZ_GAP", Status.PASS),
            finding(
                "TCP_KEEPALIVE_ABOVE_NLB_IDLE_TIMEOUT",
                Status.UNKNOWN,
                summary="Could not read the pods' keepalive settings",
                evidence=("exec into shop/web-1 failed: no sysctl",),
            ),
        ),
        cache_hit=False,
        age_s=0,
    )

    closing = messages.replies[-1]
    assert closing["text"] == (
        "Passed: SG_BLOCKS_TRAFFIC, LB_AZ_GAP. "
        "Could not check: TCP_KEEPALIVE_ABOVE_NLB_IDLE_TIMEOUT"
    )
    assert section_texts(closing) == [
        ":large_green_circle: *Passed* (2): `SG_BLOCKS_TRAFFIC`, `LB_AZ_GAP`",
        ":white_circle: *Could not check*\n• `TCP_KEEPALIVE_ABOVE_NLB_IDLE_TIMEOUT`: "
        "Could not read the pods' keepalive settings: exec into shop/web-1 failed: no sysctl",
    ]


# ---------------------------------------------------------------------------
# Escaping


def test_values_are_escaped_so_they_cannot_ping_or_link() -> None:
    messages = render(
        report(
            finding(
                "IDLE_TIMEOUT_REACHED",
                Status.FAIL,
                summary="<!channel> & <@U123> see <http://evil|here>",
                evidence=("a < b > c",),
                fixes=(Fix(title="T & <x>", language="shell", text="[ 1 -lt 2 ] && echo '<ok>'"),),
            )
        ),
        cache_hit=False,
        age_s=0,
    )

    reply = messages.replies[0]
    texts = section_texts(reply)
    assert texts[0].endswith("&lt;!channel&gt; &amp; &lt;@U123&gt; see &lt;http://evil|here&gt;")
    assert texts[1] == "*Evidence*\n• a &lt; b &gt; c"
    assert texts[2] == "*Fix: T &amp; &lt;x&gt;* (shell)"
    assert texts[3] == "```\n[ 1 -lt 2 ] &amp;&amp; echo '&lt;ok&gt;'\n```"
    for message in [messages.parent, *messages.replies]:
        assert_escaped(message)


# ---------------------------------------------------------------------------
# Limits


def test_long_fix_is_split_over_sections_without_losing_a_line() -> None:
    text = "".join(f"line {i:05d} & more\n" for i in range(600))
    messages = render(
        report(finding("X", Status.FAIL, fixes=(Fix("Long", "text", text),))),
        cache_hit=False,
        age_s=0,
    )

    reply = messages.replies[0]
    bodies = code_bodies(reply)
    assert len(bodies) > 1
    assert "\n".join(bodies) == text.rstrip("\n").replace("&", "&amp;")
    assert_within_limits(reply)


def test_fix_too_long_for_one_message_is_cut_with_a_note_counting_the_rest() -> None:
    total = 20_000
    text = "".join(f"line {i:05d}\n" for i in range(total))
    messages = render(
        report(finding("X", Status.FAIL, fixes=(Fix("Huge", "text", text),))),
        cache_hit=False,
        age_s=0,
    )

    reply = messages.replies[0]
    assert len(reply["blocks"]) == MAX_BLOCKS
    shown = "\n".join(code_bodies(reply)).split("\n")
    assert shown == [f"line {i:05d}" for i in range(len(shown))]
    note = reply["blocks"][-1]
    assert note["type"] == "context"
    assert note["elements"][0]["text"] == (
        f"… {total - len(shown)} more lines; run `eks504 check shop/web` for all"
    )
    assert_within_limits(reply)


def test_single_huge_line_is_cut_between_escaped_characters() -> None:
    messages = render(
        report(finding("X", Status.FAIL, fixes=(Fix("Amps", "text", "&" * 4000),))),
        cache_hit=False,
        age_s=0,
    )

    bodies = code_bodies(messages.replies[0])
    assert len(bodies) == 7
    assert all(re.fullmatch(r"(&amp;)+", body) for body in bodies)
    assert "".join(bodies) == "&amp;" * 4000


def test_long_header_and_fallback_are_shortened() -> None:
    code = "C" * 500
    messages = render(
        report(finding(code, Status.FAIL, summary="s" * 50_000)), cache_hit=False, age_s=0
    )

    reply = messages.replies[0]
    assert len(reply["blocks"][0]["text"]["text"]) == MAX_HEADER_TEXT
    assert reply["blocks"][0]["text"]["text"].endswith("…")
    assert len(reply["text"]) == MAX_FALLBACK_TEXT
    assert_within_limits(reply)


def test_shortened_summary_never_ends_in_half_an_entity() -> None:
    messages = render(
        report(finding("X", Status.FAIL, summary="<" * 2000)), cache_hit=False, age_s=0
    )

    summary = section_texts(messages.replies[0])[0]
    assert summary.startswith("*fail* · high\n&lt;")
    assert summary.endswith("&lt;…")
    assert_escaped(messages.replies[0])


_text = st.text(
    alphabet=st.sampled_from("ab c&<>`*_~\n:é"),
    max_size=400,
)
_big_text = st.one_of(_text, st.integers(1, 30).map(lambda n: ("x & <y>\n" * 200) * n))
_fix = st.builds(Fix, title=_text, language=st.sampled_from(["shell", "yaml", ""]), text=_big_text)
_finding = st.builds(
    Finding,
    code=st.from_regex(r"[A-Z_]{1,40}", fullmatch=True),
    status=st.sampled_from(list(Status)),
    severity=st.sampled_from(list(Severity)),
    summary=_big_text,
    resource=_text,
    evidence=st.lists(_text, max_size=80).map(tuple),
    fixes=st.lists(_fix, max_size=4).map(tuple),
)
_lb = st.builds(
    LoadBalancerSummary,
    name=_text,
    type=st.sampled_from(["classic", "application", "network", "other"]),
    dns_name=_text,
    scheme=_text,
    serves=_text,
    idle_timeout_s=st.one_of(st.none(), st.integers(1, 4000)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    findings=st.lists(_finding, max_size=25),
    lbs=st.lists(_lb, max_size=120),
    path=st.lists(_text, max_size=30),
    cache_hit=st.booleans(),
    age_s=st.floats(0, 1e6),
)
def test_any_report_renders_within_slack_limits_and_escaped(
    findings: list[Finding],
    lbs: list[LoadBalancerSummary],
    path: list[str],
    cache_hit: bool,
    age_s: float,
) -> None:
    rep = Report(target=TARGET, load_balancers=lbs, findings=findings, path=path)

    messages = render(rep, cache_hit=cache_hit, age_s=age_s)

    assert len(messages.replies) == len(rep.problems) + 1
    for message in [messages.parent, *messages.replies]:
        assert_within_limits(message)
        assert_escaped(message)
    for problem, reply in zip(rep.problems, messages.replies, strict=False):
        assert reply["blocks"][0]["text"]["text"].endswith(problem.code)
    assert any(b["type"] == "actions" for b in messages.parent["blocks"])
    packed = pack(messages)
    assert 1 <= len(packed) <= 5
    assert packed[0] == messages.parent
    for message in packed:
        assert_within_limits(message)
    assert json.loads(to_json(messages)) == {
        "parent": messages.parent,
        "replies": messages.replies,
    }


# ---------------------------------------------------------------------------
# Packing, errors, JSON


def test_pack_keeps_every_reply_when_they_fit_in_five_messages() -> None:
    messages = render(
        report(*(finding(f"CODE_{i}", Status.FAIL) for i in range(6))),
        cache_hit=False,
        age_s=0,
        intro="Only you can see this.",
    )

    packed = pack(messages)

    assert section_texts(packed[0])[0] == "Only you can see this."
    assert len(packed) == 2
    headers = [b["text"]["text"] for b in packed[1]["blocks"] if b["type"] == "header"]
    assert headers == [f":red_circle: CODE_{i}" for i in range(6)]


def test_pack_cuts_to_five_messages_with_a_note() -> None:
    many_lines = "\n".join("x" * 2900 for _ in range(48))
    big = [
        finding(f"CODE_{i:02d}", Status.FAIL, fixes=(Fix("f", "text", many_lines),))
        for i in range(8)
    ]
    messages = render(report(*big), cache_hit=False, age_s=0)

    packed = pack(messages)

    assert len(packed) == 5
    last = packed[-1]["blocks"][-1]
    note = "… 5 more messages; run `eks504 check shop/web` for all"
    assert last["elements"][0]["text"] == note
    for message in packed:
        assert_within_limits(message)


def test_render_error_says_what_failed_in_plain_words() -> None:
    err = AccessError(
        "AWS refused to describe load balancers.", needs="elasticloadbalancing:Describe*"
    )

    message = render_error(err, "shop/web")

    assert message["text"] == (
        ":warning: Could not check `shop/web`: AWS refused to describe load balancers. "
        "Grant elasticloadbalancing:Describe* and ask again."
    )
    assert message["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": message["text"]}}
    ]


def test_render_error_escapes_the_target_and_the_message() -> None:
    message = render_error(NotFoundError("No <Service> & no luck."), "<!here>")

    assert (
        message["text"]
        == ":warning: Could not check `&lt;!here&gt;`: No &lt;Service&gt; &amp; no luck."
    )


def test_render_error_hides_unexpected_exception_details() -> None:
    message = render_error(KeyError("secret-internal-key"), "shop/web")

    assert "secret-internal-key" not in message["text"]
    assert message["text"].startswith(":warning: Something went wrong while checking `shop/web`.")


def test_to_json_holds_parent_then_replies() -> None:
    messages = render(report(finding("X", Status.FAIL)), cache_hit=False, age_s=0)

    data = json.loads(to_json(messages))

    assert list(data) == ["parent", "replies"]
    assert data["parent"] == messages.parent
    assert data["replies"] == messages.replies
    assert isinstance(messages, SlackMessages)


# ---------------------------------------------------------------------------
# Progress and files


def test_progress_message_marks_each_step_waiting_running_or_done() -> None:
    from bot.render_slack import render_progress

    message = render_progress(
        Target("shop", "web", "prod"), {"resolving": "done", "metrics": "running"}
    )

    assert message["text"] == (
        ":hourglass_flowing_sand: Checking shop/web (cluster prod)… (1/4 steps)"
    )
    assert message["blocks"][1]["elements"][0]["text"] == (
        ":white_check_mark: resolving   :hourglass_flowing_sand: metrics   "
        ":white_small_square: keep-alive   :white_small_square: network"
    )


def test_evidence_that_fits_goes_in_no_file() -> None:
    messages = render(
        report(finding("X", Status.FAIL, evidence=("a", "b"))), cache_hit=False, age_s=0
    )

    assert messages.files == []


def test_evidence_too_long_for_one_message_goes_whole_into_a_file() -> None:
    evidence = tuple(f"line {i} <&> " + "y" * 2990 for i in range(80))
    fix = Fix("Raise it", "shell", "kubectl annotate svc web x=1\n")
    messages = render(
        report(finding("LONG_ONE", Status.FAIL, evidence=evidence, fixes=(fix,))),
        cache_hit=False,
        age_s=0,
    )

    (upload,) = messages.files
    reply = messages.replies[0]
    text = upload.content.decode("utf-8")
    assert upload.filename == "long_one-evidence.txt"
    assert all(f"- {line}\n" in text for line in evidence)
    assert "Fix: Raise it (shell)\nkubectl annotate svc web x=1\n" in text
    assert_within_limits(reply)
    shown = json.dumps(reply["blocks"])
    assert "line 4 &lt;&amp;&gt;" in shown
    assert "line 5 " not in shown
    assert "all of it (80 evidence lines, 1 fixes, " in shown
    assert "kubectl annotate svc web x=1" in shown


def test_many_problems_are_capped_with_one_reply_listing_the_rest() -> None:
    from bot.render_slack import MAX_FINDING_REPLIES

    findings = [
        Finding(f"CODE_{i:03d}", Status.FAIL, Severity.HIGH, f"problem {i}") for i in range(40)
    ]
    report = Report(Target("shop", "web"), [], findings)
    messages = render(report, cache_hit=False, age_s=0)
    assert len(messages.replies) == MAX_FINDING_REPLIES + 2
    rest = messages.replies[MAX_FINDING_REPLIES]
    assert rest["text"].startswith("25 more problems: CODE_015, CODE_016")
    for message in messages.replies:
        assert_within_limits(message)
