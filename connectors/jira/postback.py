"""Posting back to a Jira issue: one comment per alert and a label, each ONE attempt -> Outcome.

- Cloud: `POST /rest/api/3/issue/{key}/comment` with an ADF document (v3 refuses strings);
- Data Center: `POST /rest/api/2/issue/{key}/comment` with a wiki-markup string (v2 refuses ADF);
- labels: `PUT /rest/api/{2|3}/issue/{key}` with `{"update": {"labels": [{"add": name}]}}`, which
  never touches the issue's other labels (`fields.labels` would replace them all);
- "already posted?": the comment's text carries a marker (the alert id); `find_comment` pages
  through the issue's comments for it, so a retry after an unknown outcome (a timeout, a
  killed process) never posts twice.

Needs Browse Projects, Add Comments and (for labels) Edit Issues, with the source's own
credentials. Retries, backoff and pacing are the dispatcher's: nothing here sleeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from trackpulse.connectors.jira.client import auth_header

from trackpulse.config import JiraSourceConfig
from trackpulse.http import parse_retry_after
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent

Segment = tuple[str, bool]  # (text, bold)
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
COMMENTS_PAGE = 100


def adf_document(segments: Sequence[Segment]) -> dict[str, Any]:
    """Segments as an ADF doc: one paragraph per line, bold as a `strong` mark, no empty text nodes."""
    paragraphs: list[list[dict[str, Any]]] = [[]]
    for text, bold in segments:
        for i, line in enumerate(text.split("\n")):
            if i:
                paragraphs.append([])
            if line:
                node: dict[str, Any] = {"type": "text", "text": line}
                if bold:
                    node["marks"] = [{"type": "strong"}]
                paragraphs[-1].append(node)
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": p} for p in paragraphs if p]}


def _wiki_escape(text: str) -> str:
    # Characters that start wiki markup: a figure or a rule name must read as itself.
    for ch in "\\*_{}[]|":
        text = text.replace(ch, "\\" + ch)
    return text


def wiki_text(segments: Sequence[Segment]) -> str:
    return "".join(f"*{_wiki_escape(text)}*" if bold else _wiki_escape(text) for text, bold in segments)


def adf_text(node: Any) -> str:
    """All text of an ADF node (what a marker search reads)."""
    if isinstance(node, dict):
        return str(node.get("text", "")) + "".join(adf_text(c) for c in node.get("content") or [])
    if isinstance(node, list):
        return "".join(adf_text(c) for c in node)
    return str(node) if isinstance(node, str) else ""


def answer_of(resp: httpx.Response) -> str:
    """The service's words: status plus Jira's errorMessages / errors, one line."""
    try:
        body = resp.json()
    except ValueError:
        text = " ".join(resp.text.split())[:300]
        return f"HTTP {resp.status_code} {text}".strip()
    parts: list[str] = []
    if isinstance(body, dict):
        parts += [str(m) for m in body.get("errorMessages") or []]
        errors = body.get("errors") or {}
        if isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
    return f"HTTP {resp.status_code} " + ("; ".join(parts) or " ".join(str(body).split()))[:300]


def outcome_of_status(resp: httpx.Response) -> Outcome:
    """A non-success answer: worth retrying (429, 5xx) or refused for good (400, 401, 403, 404)."""
    if resp.status_code in RETRY_STATUSES:
        wait = parse_retry_after(resp.headers.get("Retry-After"))
        return RetryAfter(wait if wait is not None else 60.0, answer_of(resp))
    return Failed(answer_of(resp), resp.status_code)


def outcome_of_error(exc: httpx.HTTPError) -> Outcome:
    """A transport failure. Connecting failed: nothing reached Jira. Otherwise the outcome is
    unknown (the write may have happened): the retry looks for the marker first."""
    kind = type(exc).__name__
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return RetryAfter(60.0, f"cannot connect ({kind})")
    return RetryAfter(30.0, f"outcome unknown ({kind}); the retry checks for the comment first")


class JiraPostBack:
    """Comments and labels on one Jira source's issues, through a client handed in from outside."""

    def __init__(self, cfg: JiraSourceConfig, client: httpx.Client, *, cloud: bool) -> None:
        self.cfg = cfg
        self.client = client
        self.cloud = cloud
        self.base = cfg.url.rstrip("/")
        self.api = f"{self.base}/rest/api/{3 if cloud else 2}"
        self.headers = {"Authorization": auth_header(cfg.email, cfg.token.get_secret_value()),
                        "Accept": "application/json", "User-Agent": "trackpulse"}

    @classmethod
    def detect(cls, cfg: JiraSourceConfig, client: httpx.Client, deployment: str | None) -> JiraPostBack:
        """`deployment` as the last sync recorded it ("Cloud" / "Server"); unknown: ask serverInfo."""
        if deployment is None:
            resp = client.get(f"{cfg.url.rstrip('/')}/rest/api/2/serverInfo", timeout=cfg.timeout_seconds)
            resp.raise_for_status()
            deployment = "Cloud" if str(resp.json().get("deploymentType", "")).lower() == "cloud" else "Server"
        return cls(cfg, client, cloud=deployment == "Cloud")

    def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.client.request(method, url, headers=self.headers, timeout=self.cfg.timeout_seconds, **kw)

    def find_comment(self, key: str, marker: str) -> str | Outcome | None:
        """The id of the issue's comment containing `marker`; None if there is none; an Outcome
        when the lookup itself could not be made."""
        start = 0
        while True:
            try:
                resp = self._send("GET", f"{self.api}/issue/{key}/comment",
                                  params={"startAt": start, "maxResults": COMMENTS_PAGE})
            except httpx.HTTPError as exc:
                return outcome_of_error(exc)
            if resp.status_code != 200:
                return outcome_of_status(resp)
            page = resp.json()
            comments = page.get("comments") or []
            for c in comments:
                body = c.get("body")
                text = body if isinstance(body, str) else adf_text(body)
                if marker in text:
                    return str(c.get("id"))
            start += len(comments)
            if not comments or start >= int(page.get("total", start)):
                return None

    def post_comment(self, key: str, segments: Sequence[Segment], marker: str, *, check_first: bool) -> Outcome:
        """One comment. With `check_first` (an earlier attempt's outcome is unknown) a comment
        already carrying `marker` counts as sent and nothing is posted."""
        if check_first:
            found = self.find_comment(key, marker)
            if isinstance(found, str):
                return Sent(found)
            if found is not None:
                return found
        body: Any = adf_document(segments) if self.cloud else wiki_text(segments)
        try:
            resp = self._send("POST", f"{self.api}/issue/{key}/comment", json={"body": body})
        except httpx.HTTPError as exc:
            return outcome_of_error(exc)
        if resp.status_code == 201:
            return Sent(str(resp.json().get("id")))
        return outcome_of_status(resp)

    def add_label(self, key: str, label: str) -> Outcome:
        """Add `label`, leaving every other label of the issue as it is (idempotent)."""
        try:
            resp = self._send("PUT", f"{self.api}/issue/{key}", json={"update": {"labels": [{"add": label}]}})
        except httpx.HTTPError as exc:
            if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                return outcome_of_error(exc)
            return RetryAfter(30.0, f"outcome unknown ({type(exc).__name__}); adding a label again is harmless")
        if resp.status_code in (200, 204):
            return Sent(label)
        return outcome_of_status(resp)
