"""Jira over HTTP: authentication, endpoints and paging, nothing else (Perceval's `Client`).

Every request goes through `trackpulse.http.TrackerHttp` (pacing, the per-source concurrency
bound, Retry-After, backoff, error mapping). This module knows Jira's URLs and page shapes and
returns plain JSON; `mapping.py` turns JSON into records and `sync.py` decides what to fetch.

Cloud and Data Center differ (research/API_NOTES.md §1):
- Cloud: `/rest/api/3`; search is `POST /search/jql` paged by `nextPageToken` (the old `/search`
  answers 410), ids-only pages hold up to 5000; details come from `POST /issue/bulkfetch`
  (≤100 ids) and changelogs from `POST /changelog/bulkfetch` (≤1000 ids, filtered by field);
  worklog feeds `/worklog/updated|deleted` + `POST /worklog/list`.
- Data Center: `/rest/api/2`; `POST /search` paged by `startAt`, the server clamps `maxResults`
  (read it back) and refuses windows beyond 10,000 results, so callers continue with `id > last`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from trackpulse.errors import RequestFailed
from trackpulse.http import TrackerHttp

AGILE = "/rest/agile/1.0"
CLOUD_IDS_PAGE = 5000  # search/jql's largest page, reached when only `id` is requested
BULKFETCH_MAX = 100
CHANGELOG_BULK_MAX = 1000
WORKLOG_LIST_MAX = 1000
RATE_RESET_MAX_WAIT = 120.0  # seconds


def auth_header(email: str | None, token: str) -> str:
    """Basic email:token (Cloud API token) when an e-mail is configured, else Bearer (DC PAT)."""
    if email:
        return "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode("ascii")
    return f"Bearer {token}"


def rate_window_reset(resp: httpx.Response) -> float | None:
    """Seconds until Jira's rate window resets (`X-RateLimit-Reset`, ISO 8601), for a 429
    that came without Retry-After."""
    value = resp.headers.get("X-RateLimit-Reset")
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wait = (when - datetime.now(UTC)).total_seconds()
    # The header is on Jira's clock and has minute precision; a host clock that is off would
    # turn it into a wait of hours. Beyond a rate window, trust backoff instead.
    return wait if 0 <= wait <= RATE_RESET_MAX_WAIT else None


class JiraClient:
    """Jira REST (platform v2/v3 and agile 1.0) over one `TrackerHttp`."""

    def __init__(self, http: TrackerHttp, *, cloud: bool = True) -> None:
        self.http = http
        self.cloud = cloud

    @property
    def api(self) -> str:
        return "/rest/api/3" if self.cloud else "/rest/api/2"

    # ------------------------------------------------------------------ site and catalogue
    def server_info(self) -> dict[str, Any]:
        # v2 exists on both deployments: this is how we learn which one we talk to.
        return dict(self.http.get_json("/rest/api/2/serverInfo"))

    def myself(self) -> dict[str, Any]:
        return dict(self.http.get_json(f"{self.api}/myself"))

    def fields(self) -> list[dict[str, Any]]:
        return list(self.http.get_json(f"{self.api}/field"))

    def statuses(self) -> list[dict[str, Any]]:
        return list(self.http.get_json(f"{self.api}/status"))

    def project(self, key: str) -> dict[str, Any] | None:
        resp = self.http.request("GET", f"{self.api}/project/{key}", ok_statuses=(404,))
        return None if resp.status_code == 404 else dict(resp.json())

    def project_versions(self, key: str) -> list[dict[str, Any]] | None:
        """`GET /project/{key}/versions`: every version of the project, one unpaged array
        (None when the project does not exist or is not visible)."""
        resp = self.http.request("GET", f"{self.api}/project/{key}/versions", ok_statuses=(404,))
        return None if resp.status_code == 404 else list(resp.json())

    def _agile_pages(
        self, path: str, params: dict[str, Any] | None = None, page: int = 50
    ) -> Iterator[dict[str, Any]]:
        start = 0
        while True:
            body = self.http.get_json(path, {**(params or {}), "startAt": start, "maxResults": page})
            values = list(body.get("values") or [])
            yield from values
            # Read the page size back: servers cap it below what we asked.
            start += len(values)
            if body.get("isLast", True) or not values:
                return

    def boards(self, project_key: str | None = None) -> Iterator[dict[str, Any]]:
        params = {"projectKeyOrId": project_key} if project_key else {}
        return self._agile_pages(f"{AGILE}/board", params)

    def board_configuration(self, board_id: str) -> dict[str, Any] | None:
        resp = self.http.request("GET", f"{AGILE}/board/{board_id}/configuration", ok_statuses=(404,))
        return None if resp.status_code == 404 else dict(resp.json())

    def board_sprints(self, board_id: str) -> list[dict[str, Any]]:
        # Kanban boards answer 400 "does not support sprints": not an error for us.
        out: list[dict[str, Any]] = []
        start = 0
        while True:
            resp = self.http.request(
                "GET",
                f"{AGILE}/board/{board_id}/sprint",
                params={"startAt": start, "maxResults": 50},
                ok_statuses=(400, 404),
            )
            if resp.status_code in (400, 404):
                return out
            body = resp.json()
            values = list(body.get("values") or [])
            out += values
            start += len(values)
            if body.get("isLast", True) or not values:
                return out

    # ------------------------------------------------------------------ Cloud search and bulk reads
    def search_ids(
        self, jql: str, next_page_token: str | None = None, max_results: int = CLOUD_IDS_PAGE
    ) -> tuple[list[str], str | None]:
        """One ids-only page of `POST /rest/api/3/search/jql`: (ids in page order, next token)."""
        body: dict[str, Any] = {"jql": jql, "fields": ["id"], "maxResults": max_results}
        if next_page_token:
            body["nextPageToken"] = next_page_token
        page = self.http.post_json("/rest/api/3/search/jql", body)
        ids = [str(i["id"]) for i in page.get("issues") or []]
        token = page.get("nextPageToken") if not page.get("isLast", False) else None
        return ids, token or None

    def bulkfetch_issues(self, ids: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any]]:
        """`POST /rest/api/3/issue/bulkfetch` (≤100 ids); missing issues are silently absent."""
        if not ids:
            return []
        if len(ids) > BULKFETCH_MAX:
            raise ValueError(f"bulkfetch takes at most {BULKFETCH_MAX} ids")
        body = {"issueIdsOrKeys": list(ids), "fields": list(fields), "fieldsByKeys": False}
        page = self.http.post_json("/rest/api/3/issue/bulkfetch", body)
        errors = page.get("issueErrors") or []
        if errors:
            # Retriable per-issue failures: the caller would silently lose these issues.
            raise RequestFailed(
                self.http.source,
                f"issue/bulkfetch reported errors for {len(errors)} issues: "
                f"{errors[0].get('errorMessage', '')}",
                url=str(self.http.client.base_url.join("/rest/api/3/issue/bulkfetch")),
            )
        return list(page.get("issues") or [])

    def changelog_bulkfetch(
        self, ids: Sequence[str], field_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """All changelogs of ≤1000 issues limited to `field_ids` (≤10): {issue id: histories}."""
        out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        if not ids:
            return out
        token: str | None = None
        while True:
            body: dict[str, Any] = {
                "issueIdsOrKeys": list(ids),
                "fieldIds": list(field_ids)[:10],
                "maxResults": 10000,
            }
            if token:
                body["nextPageToken"] = token
            page = self.http.post_json("/rest/api/3/changelog/bulkfetch", body)
            for entry in page.get("issueChangeLogs") or []:
                out.setdefault(str(entry["issueId"]), []).extend(entry.get("changeHistories") or [])
            token = page.get("nextPageToken")
            if not token:
                return out

    def worklog_feed(self, kind: str, since_ms: int) -> Iterator[tuple[list[dict[str, Any]], int, bool]]:
        """`GET /worklog/updated|deleted?since=`: pages of (values, until, last_page)."""
        since = since_ms
        while True:
            page = self.http.get_json(f"/rest/api/3/worklog/{kind}", {"since": since})
            values = list(page.get("values") or [])
            until = int(page.get("until") or since)
            last = bool(page.get("lastPage", True))
            yield values, until, last
            if last or until <= since:
                return
            since = until

    def worklog_list(self, ids: Sequence[int | str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        return list(self.http.post_json("/rest/api/3/worklog/list", {"ids": [int(i) for i in ids]}))

    # ------------------------------------------------------------------ Data Center search
    def search_page(
        self,
        jql: str,
        fields: Sequence[str],
        *,
        start_at: int = 0,
        max_results: int = 100,
        expand: Sequence[str] = (),
    ) -> dict[str, Any]:
        """One page of `POST /rest/api/2/search` (Server/Data Center)."""
        body: dict[str, Any] = {
            "jql": jql,
            "startAt": start_at,
            "maxResults": max_results,
            "fields": list(fields),
        }
        if expand:
            body["expand"] = list(expand)
        return dict(self.http.post_json("/rest/api/2/search", body))

    # ------------------------------------------------------------------ per-issue paging
    def _start_at_pages(
        self,
        path: str,
        list_key: str,
        page: int,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = 0
        while True:
            body = self.http.get_json(path, {**(params or {}), "startAt": start, "maxResults": page})
            values = list(body.get(list_key) or [])
            out += values
            start += len(values)
            total = body.get("total")
            if not values or body.get("isLast") is True or (total is not None and start >= total):
                return out

    def issue_changelog(self, issue_id: str) -> list[dict[str, Any]]:
        """Every history of one issue, oldest first (`/issue/{id}/changelog`)."""
        return self._start_at_pages(f"{self.api}/issue/{issue_id}/changelog", "values", 100)

    def issue_with_changelog(self, issue_id: str) -> list[dict[str, Any]]:
        """Data Center's whole changelog: `GET /issue/{id}?expand=changelog` returns it inline."""
        body = self.http.get_json(f"{self.api}/issue/{issue_id}", {"expand": "changelog", "fields": "id"})
        return list((body.get("changelog") or {}).get("histories") or [])

    def issue_worklogs(self, issue_id: str) -> list[dict[str, Any]]:
        return self._start_at_pages(f"{self.api}/issue/{issue_id}/worklog", "worklogs", 5000)

    def issue_comments(self, issue_id: str) -> list[dict[str, Any]]:
        return self._start_at_pages(f"{self.api}/issue/{issue_id}/comment", "comments", 100)
