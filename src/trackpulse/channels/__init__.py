"""Where messages go: one module per service, all speaking the `Channel` protocol of `base`.

`CHANNELS` is the one registry (config `kind` -> class); `open_channel` builds a channel from its
configuration with an HTTP client handed in from outside (tests and the demo pass one that
reaches local receivers).
"""

from __future__ import annotations

import httpx

from trackpulse.channels.base import Channel
from trackpulse.channels.dingtalk import DingTalkChannel
from trackpulse.channels.email import EmailChannel
from trackpulse.channels.feishu import FeishuChannel
from trackpulse.channels.slack import SlackChannel
from trackpulse.channels.teams import TeamsChannel
from trackpulse.channels.webhook import WebhookJsonChannel
from trackpulse.channels.wecom import WeComChannel
from trackpulse.config import ChannelConfig, EmailChannelConfig

CHANNELS: dict[str, type] = {
    cls.kind: cls
    for cls in (SlackChannel, TeamsChannel, DingTalkChannel, FeishuChannel, WeComChannel, WebhookJsonChannel,
                EmailChannel)
}


def open_channel(cfg: ChannelConfig, client: httpx.Client | None = None) -> Channel:
    """The channel `cfg` describes. HTTP kinds use `client` if given (not closed by the channel's
    `close`), else a client of their own with the channel's `timeout_seconds`."""
    if isinstance(cfg, EmailChannelConfig):
        return EmailChannel(cfg)
    channel: Channel = CHANNELS[cfg.kind](cfg, client)
    return channel


__all__ = ["CHANNELS", "Channel", "open_channel"]
