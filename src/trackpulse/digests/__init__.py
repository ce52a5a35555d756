"""Digests: scheduled summaries of the metrics for a period, compared with the period before,
as an HTML e-mail with charts and a Markdown summary for chat channels, in English or Chinese.

`build` gets the data (the same report code as `trackpulse metrics`), `content` decides what is
shown, `mail` and `chat` render it, `send` claims the firing once and hands the messages to the
alerts outbox; `mail.write_preview` writes the e-mail to files.
"""

from trackpulse.digests.build import SCHEMA_ID, DigestData, build_digest, build_from_input, digest_json
from trackpulse.digests.send import DigestSendResult, dispatch_now, firing_key, send_digest

__all__ = ["SCHEMA_ID", "DigestData", "DigestSendResult", "build_digest", "build_from_input", "digest_json",
           "dispatch_now", "firing_key", "send_digest"]
