"""The digest's chat summary on each chat kind fits the service's documented size limit
(ALERTS_NOTES.md) and, where the content would not fit, is cut at a line with the "see the
e-mail" note, the headline figures kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from digest_worlds import AS_OF, digest_config, many_projects_world

from trackpulse.channels import open_channel
from trackpulse.config import parse_config
from trackpulse.digests import build_from_input
from trackpulse.digests.chat import chat_message, digest_markdown
from trackpulse.digests.content import DigestContent, build_content
from trackpulse.i18n import t

KINDS = ("dingtalk", "feishu", "wecom", "slack", "teams")
# A policy name as long as some service desks write them: 20 breach lines no longer fit WeCom.
LONG_POLICY = "企业客户关键业务系统故障一级响应与解决时效承诺（含节假日与夜间值守）" * 2


def _dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def service_sizes(kind: str, body: dict[str, Any]) -> list[tuple[int, int]]:
    """(measured, limit) pairs of what each service counts, as ALERTS_NOTES.md gives them."""
    if kind == "dingtalk":
        return [(len(_dumps(body)), 20_000)]  # errcode 460101 "exceed 20000 bytes"
    if kind == "feishu":
        return [(len(_dumps(body)) + 80, 20 * 1024)]  # request body <= 20 KB, with timestamp and sign
    if kind == "wecom":
        return [(len(body["markdown"]["content"].encode("utf-8")), 4096)]  # markdown.content <= 4096 bytes
    if kind == "slack":
        return [(len(b["text"]["text"]), 3000) for b in body["blocks"] if b.get("type") == "section"] + \
            [(len(body.get("text", "")), 40_000)]
    return [(len(_dumps(body)), 28 * 1024)]  # Teams: 28 KB


def _channel(kind: str) -> Any:
    cfg = parse_config({"channels": [{"name": f"team-{kind}", "kind": kind,
                                      "url": f"https://{kind}.example/hook?access_token=tok"}]})
    return open_channel(cfg.channel(f"team-{kind}"))


def _content(lang: str, policy: str = "P1") -> DigestContent:
    data = build_from_input(many_projects_world(10, policy=policy), digest_config(language=lang), as_of=AS_OF)
    return build_content(data)


@pytest.fixture(scope="module")
def contents() -> dict[tuple[str, str], DigestContent]:
    return {(lang, policy): _content(lang, policy) for lang in ("en", "zh") for policy in ("P1", LONG_POLICY)}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("kind", KINDS)
def test_ten_project_summary_fits_each_service_whole(contents: dict, kind: str, lang: str) -> None:
    content = contents[(lang, "P1")]
    channel = _channel(kind)
    message = chat_message(content, channel)
    for measured, limit in service_sizes(kind, message.body):
        assert measured <= limit, (kind, measured, limit)
    text = json.dumps(message.body, ensure_ascii=False)
    assert t("digests.see_email", lang) not in text
    for h in content.headlines:
        assert h.label in text and h.change in text
    assert t("digests.chat_breached", lang, n=content.breached_in_period) in text
    assert text.count(" · P1 · ") == 20  # the first 20 breaches, then "… n more"


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_summary_too_long_for_the_service_is_cut_with_a_see_email_note(contents: dict, kind: str,
                                                                         lang: str) -> None:
    content = contents[(lang, LONG_POLICY)]
    channel = _channel(kind)
    message = chat_message(content, channel)
    for measured, limit in service_sizes(kind, message.body):
        assert measured <= limit, (kind, measured, limit)
    text = json.dumps(message.body, ensure_ascii=False)
    whole = digest_markdown(content, limit=10**9)
    if kind == "wecom":
        assert len(whole.encode("utf-8")) > 4096  # it would not have fitted
        assert t("digests.see_email", lang) in text
        assert 0 < text.count(LONG_POLICY) < 20
    else:
        assert t("digests.see_email", lang) not in text and text.count(LONG_POLICY) == 20
    for h in content.headlines:  # the headline figures survive any cut
        assert h.label in text


def test_cut_happens_at_a_line_and_stays_under_the_limit_for_any_budget() -> None:
    content = _content("zh", LONG_POLICY)
    whole = digest_markdown(content, limit=10**9)
    note = t("digests.see_email", "zh")
    for limit in (600, 1000, 2500, 4000, len(whole.encode("utf-8")) - 1):
        cut = digest_markdown(content, limit=limit)
        assert len(cut.encode("utf-8")) <= limit and cut.endswith(note)
        kept = cut.removesuffix(note).rstrip("\n")
        assert whole.startswith(kept)  # whole lines from the top, nothing rewritten
