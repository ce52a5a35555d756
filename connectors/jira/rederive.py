"""Re-derivation: rebuild every derived row of a Jira source from the raw JSON in the store.

Items keep their raw issue JSON and histories their raw changelog entries (DevLake's raw layer),
so when the mapping changes (another story-points field, other defect types, the Sprint field)
the derived columns of `item` and the rows of `transition`, `sprint_change`,
`estimate_change` and `assignee_change` are rebuilt here without downloading anything. The sync runs this when the
mapping's derivation hash differs from the one stored in `source_state.mapping_hash`.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col
from trackpulse.connectors.jira import mapping as jm

from trackpulse.config import JiraSourceConfig
from trackpulse.store.db import Store
from trackpulse.store.models import AssigneeChange, EstimateChange, History, Item, SprintChange, Transition
from trackpulse.store.writer import get_cursor, record_run, upsert

META_FIELDS = "meta.fields"  # cursor entity holding the JiraMapping the last sync discovered
# Item columns that come from the mapping; bookkeeping (deleted, raw, updated) is left alone.
_DERIVED_ITEM_COLUMNS = (
    "key",
    "project",
    "summary",
    "type",
    "priority",
    "is_defect",
    "status_id",
    "status_name",
    "status_category",
    "points",
    "sprint_ids",
    "created",
    "resolved_at",
    "reporter",
    "reporter_name",
    "assignee",
    "assignees",
    "fix_versions",
    "epic",
    "is_epic",
)
_BATCH = 1000


def mapping_for(session: Session, source_cfg: JiraSourceConfig) -> jm.JiraMapping:
    """The mapping in force: what the last sync discovered, with the configuration on top."""
    text = get_cursor(session, source_cfg.name, META_FIELDS)
    m = jm.JiraMapping.from_json(text) if text else jm.JiraMapping()
    m = m.with_defect_types(source_cfg.defect_types)
    if source_cfg.story_points_field != "auto" and source_cfg.story_points_field != m.story_points_field:
        m = replace(
            m,
            story_points_field=source_cfg.story_points_field,
            story_points_name=m.field_names.get(source_cfg.story_points_field),
        )
    return m


def rederive(store: Store, source_cfg: JiraSourceConfig) -> int:
    """Rebuild a source's derived rows from stored raw JSON; returns the number of items."""
    with store.transaction() as s:
        m = mapping_for(s, source_cfg)
        n = rederive_in_session(s, source_cfg.name, m)
        record_run(s, source_cfg.name, "jira", mapping_hash=m.derivation_hash())
    return n


def rederive_in_session(session: Session, source: str, m: jm.JiraMapping) -> int:
    """The work of `rederive`, inside the caller's transaction (the sync commits it with the
    catalogue that caused it)."""
    n = 0
    last = ""
    while True:
        rows = session.execute(
            sa.select(col(Item.item_id), col(Item.raw))
            .where(col(Item.source) == source, col(Item.item_id) > last)
            .order_by(col(Item.item_id))
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        out: list[dict[str, Any]] = []
        for item_id, raw in rows:
            if not raw or "fields" not in raw:
                continue
            rec = jm.map_issue(source, raw, m)
            row = asdict(rec)
            row["sprint_ids"] = list(rec.sprint_ids)
            row["assignees"] = list(rec.assignees)
            row["fix_versions"] = list(rec.fix_versions)
            out.append({"source": source, "item_id": item_id, **{c: row[c] for c in _DERIVED_ITEM_COLUMNS}})
        if out:
            # ORM bulk UPDATE by primary key: derived columns only, tombstones and raw untouched.
            session.execute(sa.update(Item), out)
        n += len(rows)
        last = rows[-1][0]

    for model in (Transition, SprintChange, EstimateChange, AssigneeChange):
        session.execute(sa.delete(model).where(col(model.source) == source))
    last_key: tuple[str, str] = ("", "")
    while True:
        hrows = session.execute(
            sa.select(col(History.item_id), col(History.history_id), col(History.at), col(History.raw))
            .where(
                col(History.source) == source,
                sa.tuple_(col(History.item_id), col(History.history_id)) > sa.tuple_(*last_key),
            )
            .order_by(col(History.item_id), col(History.history_id))
            .limit(_BATCH)
        ).all()
        if not hrows:
            break
        trans: list[dict[str, Any]] = []
        sprints: list[dict[str, Any]] = []
        estimates: list[dict[str, Any]] = []
        assignees: list[dict[str, Any]] = []
        for item_id, history_id, at, raw in hrows:
            if not raw:
                continue
            h = jm.map_history(item_id, raw, m, at=at)
            base = {"source": source, "item_id": item_id, "history_id": history_id}
            trans += [{**base, **asdict(t)} for t in h.transitions]
            sprints += [
                {
                    **base,
                    "seq": c.seq,
                    "at": c.at,
                    "from_sprint_ids": list(c.from_sprint_ids),
                    "to_sprint_ids": list(c.to_sprint_ids),
                }
                for c in h.sprint_changes
            ]
            estimates += [{**base, **asdict(e)} for e in h.estimate_changes]
            assignees += [{**base, "seq": a.seq, "at": a.at, "added": list(a.added), "removed": list(a.removed)}
                          for a in h.assignee_changes]
        upsert(session, AssigneeChange, assignees, update=[])
        upsert(session, Transition, trans, update=[])
        upsert(session, SprintChange, sprints, update=[])
        upsert(session, EstimateChange, estimates, update=[])
        last_key = (hrows[-1][0], hrows[-1][1])
    return n
