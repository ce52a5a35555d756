"""Sprint velocity (METRICS.md §4, Jira's Velocity Chart), Trello iterations (§5), the
per-board `velocity_avg_3`, and the burndown / burn-up of active sprints (extra figure).

Sprint membership is replayed from the Sprint field changelog into *membership
intervals*: one row per (item, sprint, join, leave) where the item was a member from
`join` (inclusive) until `leave` (exclusive; NAT = still a member at `as_of`). Every
sprint figure is a filter over those intervals plus the as-of replays of points and
status category from `history`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import chain

import numpy as np
import pandas as pd

from trackpulse.metrics.frames import NAT, NS_PER_DAY, MetricsInput, instants_ns, str_array
from trackpulse.metrics.history import DONE, ItemHistory, group_first

_FOREVER = np.iinfo(np.int64).max


@dataclass
class Membership:
    """Membership intervals: item position, sprint (source, sprint id), [join, leave)."""

    pos: np.ndarray
    source: np.ndarray  # object
    sprint_id: np.ndarray  # object
    join: np.ndarray
    leave: np.ndarray  # NAT: still a member as of as_of
    pair: np.ndarray  # int: same value for all intervals of one (item, sprint), ordered by join
    # (source code, source names, sprint id code, sprint ids): the two columns as codes into
    # their distinct values, when the replay knows them (see `sprint_index`).
    codes: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _sprint_index: tuple[pd.DataFrame, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def leave_or_forever(self) -> np.ndarray:
        return np.where(self.leave == NAT, _FOREVER, self.leave)

    def sprint_index(self, sprints: pd.DataFrame) -> np.ndarray:
        """Per interval: the row of its (source, sprint id) in `sprints`, -1 for none.

        A million intervals share a few hundred sprints: only the distinct (source, sprint id)
        pairs are looked up, found from the columns' codes (a MultiIndex look-up of every
        interval cost 0.2 s at a million items, factorizing the two object columns 0.5 s;
        velocity and scope both ask). Remembered for the last frame asked about.
        """
        if self._sprint_index is not None and self._sprint_index[0] is sprints:
            return self._sprint_index[1]
        if len(self.pos) == 0 or len(sprints) == 0:
            k = np.full(len(self.pos), -1, dtype=np.int64)
        else:
            if self.codes is not None:
                src_code, src_values, id_code, id_values = self.codes
            else:
                src_code, src_values = pd.factorize(self.source, use_na_sentinel=False)
                id_code, id_values = pd.factorize(self.sprint_id, use_na_sentinel=False)
            width = len(id_values)
            pair = src_code.astype(np.int64) * width + id_code
            if len(src_values) * width <= 2 * len(pair) + 4096:  # a table over every possible pair
                present = np.flatnonzero(np.bincount(pair, minlength=len(src_values) * width))
                inverse = np.full(len(src_values) * width, -1, dtype=np.int64)
                inverse[present] = np.arange(len(present))
                inverse = inverse[pair]
            else:
                present, inverse = np.unique(pair, return_inverse=True)
            lookup = pd.MultiIndex.from_arrays([sprints["source"].to_numpy(dtype=object),
                                                sprints["sprint_id"].to_numpy(dtype=object)])
            wanted = pd.MultiIndex.from_arrays([np.asarray(src_values, dtype=object)[present // width],
                                                np.asarray(id_values, dtype=object)[present % width]])
            k = lookup.get_indexer(wanted).astype(np.int64)[inverse.ravel()]
        self._sprint_index = (sprints, k)
        return k


def sprint_membership(hist: ItemHistory, inp: MetricsInput) -> Membership:
    """Replay every item's Sprint field up to `as_of` into membership intervals.

    Before the first change an item is in that change's `from_sprint_ids`; with no change
    in its current `sprint_ids`; either way from `created` on.
    """
    n = hist.n
    sc = inp.sprint_changes
    pos = hist.index.positions(sc["source"], sc["item_id"])
    sel = np.flatnonzero(pos >= 0)
    pos = pos[sel]
    at = instants_ns(sc["at"])[sel]
    order = np.lexsort((sc["seq"].to_numpy(dtype=np.int64)[sel], at, pos))
    take = sel[order]
    pos, at = pos[order], at[order]
    from_ids = sc["from_sprint_ids"].to_numpy(dtype=object)[take]
    to_ids = sc["to_sprint_ids"].to_numpy(dtype=object)[take]

    initial = hist.items["sprint_ids"].to_numpy(dtype=object).copy() if n else np.empty(0, dtype=object)
    g, r = group_first(pos, np.arange(len(pos)))
    initial[g] = from_ids[r]
    moves = np.flatnonzero(at <= hist.as_of)
    m_pos = pos[moves]
    m_at = np.maximum(at[moves], hist.created[m_pos]) if n else at[moves]

    counts = 1 + np.bincount(m_pos, minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    move_counts = counts - 1
    rank = np.arange(len(moves), dtype=np.int64) - (np.cumsum(move_counts) - move_counts)[m_pos]
    move_rows = offsets[m_pos] + 1 + rank
    size = int(offsets[-1])
    st_pos = np.repeat(np.arange(n, dtype=np.int64), counts)
    st_at = np.empty(size, dtype=np.int64)
    st_ids = np.empty(size, dtype=object)
    st_at[offsets[:-1]], st_ids[offsets[:-1]] = hist.created, initial
    st_at[move_rows], st_ids[move_rows] = m_at, to_ids[moves]

    # Explode states into (state row, sprint id) pairs.
    ex_row, ex_sprint, sprint_code, sprint_values = _explode_ids(st_ids)
    if len(ex_row) == 0:  # no item in any sprint (or no item yet, mid-way through a first sync)
        none = np.empty(0, dtype=np.int64)
        return Membership(pos=none, source=np.empty(0, dtype=object), sprint_id=np.empty(0, dtype=object),
                          join=none, leave=none, pair=none)
    ex_pos = st_pos[ex_row]
    n_codes = int(sprint_code.max()) + 1
    if n * n_codes < 2**62:
        # lexsort((ex_row, sprint_code, ex_pos)) without its three passes: the exploded rows
        # follow the state table, so ex_pos and ex_row already ascend and a stable sort on one
        # combined key gives the same order; the data being nearly sorted, timsort is close to linear.
        order = np.argsort(ex_pos * n_codes + sprint_code, kind="stable")
    else:
        order = np.lexsort((ex_row, sprint_code, ex_pos))
    ex_row, ex_pos, sprint_code, ex_sprint = ex_row[order], ex_pos[order], sprint_code[order], ex_sprint[order]
    same_pair = np.r_[False, (ex_pos[1:] == ex_pos[:-1]) & (sprint_code[1:] == sprint_code[:-1])]
    continues = same_pair & np.r_[False, ex_row[1:] == ex_row[:-1] + 1]
    heads = np.flatnonzero(~continues)
    tails = np.r_[heads[1:] - 1, len(ex_row) - 1].astype(np.int64) if len(heads) else heads
    last_row = ex_row[tails]
    i_pos = ex_pos[heads]
    has_next = last_row + 1 < offsets[i_pos + 1]
    leave = np.where(has_next, st_at[np.minimum(last_row + 1, max(size - 1, 0))], NAT)
    pair = np.cumsum(~same_pair[heads]) - 1 if len(heads) else heads
    src = str_array(hist.items["source"])[i_pos] if n else np.empty(0, dtype=object)
    # An item's source is its project's: codes of the few project sources, not of every interval.
    project_src_code, src_values = pd.factorize(hist.projects["source"].to_numpy(dtype=object),
                                                use_na_sentinel=False)
    codes = (project_src_code[hist.project_code[i_pos]], np.asarray(src_values, dtype=object),
             sprint_code[heads], sprint_values)
    return Membership(pos=i_pos, source=src, sprint_id=ex_sprint[heads], join=st_at[ex_row[heads]],
                      leave=leave.astype(np.int64), pair=pair, codes=codes)


def _explode_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, sprint id, sprint code) per element of the id tuples `ids`, row by row in tuple order,
    and the distinct sprint ids (by code).

    Codes number the sprint ids in order of first appearance (as `pd.factorize` of the
    exploded ids would). Millions of rows share a few hundred distinct tuples, so the tuples
    are factorized and only the distinct ones are walked in Python.
    """
    try:
        codes, distinct = pd.factorize(ids, use_na_sentinel=True)
    except TypeError:  # a list among the tuples: unhashable, make every row a tuple
        tuples = np.fromiter((t if isinstance(t, tuple) else tuple(t) if isinstance(t, list) else () for t in ids),
                             dtype=object, count=len(ids))
        codes, distinct = pd.factorize(tuples, use_na_sentinel=True)
    d_tuples = [t if isinstance(t, tuple) else () for t in distinct]
    d_len = np.fromiter((len(t) for t in d_tuples), dtype=np.int64, count=len(d_tuples))
    d_start = np.zeros(len(d_tuples) + 1, dtype=np.int64)
    np.cumsum(d_len, out=d_start[1:])
    flat = np.fromiter(chain.from_iterable(d_tuples), dtype=object, count=int(d_start[-1]))
    flat_code, flat_values = pd.factorize(flat, use_na_sentinel=False)
    valid = codes >= 0
    lengths = np.where(valid, d_len[np.maximum(codes, 0)] if len(d_len) else 0, 0)
    ex_row = np.repeat(np.arange(len(ids), dtype=np.int64), lengths)
    if len(ex_row) == 0:
        return ex_row, np.empty(0, dtype=object), np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    starts = np.cumsum(lengths) - lengths
    within = np.arange(len(ex_row), dtype=np.int64) - starts[ex_row]
    flat_at = d_start[codes[ex_row]] + within
    # `flat_code` already numbers the ids by first appearance in the exploded order: the
    # distinct tuples are numbered by the row they first appear in, and `flat` lists them in
    # that order, each in its own order (no renumbering pass over the exploded rows).
    return ex_row, flat[flat_at], flat_code[flat_at].astype(np.int64), np.asarray(flat_values, dtype=object)


def reported_sprints(inp: MetricsInput, as_of: int, sources: list[str] | None = None) -> pd.DataFrame:
    """Sprints started by `as_of` (§4), with state and completion as of `as_of`.

    A sprint completed after `as_of` was still active then, so it is reported active with
    C = as_of; its stored state is not consulted, the dates are.
    """
    sp = inp.sprints
    if sources is not None:
        sp = sp[sp["source"].isin(sources)]
    start = instants_ns(sp["start"])
    complete = instants_ns(sp["complete"])
    end = instants_ns(sp["end"])
    keep = (start != NAT) & (start <= as_of)
    closed = keep & (complete != NAT) & (complete <= as_of)
    frame = pd.DataFrame({
        "source": str_array(sp["source"]), "board": str_array(sp["board_id"]),
        "sprint_id": str_array(sp["sprint_id"]), "name": str_array(sp["name"]),
        "start": start, "end": end, "complete": np.where(closed, complete, NAT),
        "state": np.where(closed, "closed", "active").astype(object),
    })[keep]
    frame["until"] = np.where(frame["state"] == "closed", frame["complete"], as_of)  # C of §4
    return frame.sort_values(["source", "board", "start", "sprint_id"], kind="stable").reset_index(drop=True)


def sprint_velocity(hist: ItemHistory, inp: MetricsInput, sprints: pd.DataFrame,
                    membership: Membership | None = None) -> pd.DataFrame:
    """committed/completed/added/removed points per reported sprint (§4), in `sprints`' order."""
    out = sprints.copy()
    for col in ("committed_points", "completed_points", "added_points", "removed_points"):
        out[col] = 0.0
    if len(sprints) == 0 or hist.n == 0:
        return out
    m = membership if membership is not None else sprint_membership(hist, inp)
    k = m.sprint_index(sprints)
    rel = np.flatnonzero(k >= 0)
    k = k[rel]
    pos, join, leave, pair = m.pos[rel], m.join[rel], m.leave_or_forever()[rel], m.pair[rel]
    s = sprints["start"].to_numpy(dtype=np.int64)[k]
    c = sprints["until"].to_numpy(dtype=np.int64)[k]
    n_sprints = len(sprints)

    def total(mask: np.ndarray, at: np.ndarray) -> np.ndarray:
        sel = np.flatnonzero(mask)
        points = np.nan_to_num(hist.points_at(pos[sel], at[sel]), nan=0.0)
        return np.bincount(k[sel], weights=points, minlength=n_sprints)

    member_s = (join <= s) & (s < leave)
    out["committed_points"] = total(member_s, s)
    member_c = (join <= c) & (c < leave)
    done_c = np.zeros(len(pos), dtype=bool)
    idx = np.flatnonzero(member_c)
    done_c[idx] = hist.category_at(pos[idx], c[idx]) == DONE
    out["completed_points"] = total(done_c, c)
    # An item joining or leaving several times in one sprint counts once, at its first move.
    added = (join > s) & (join <= c)
    _, first_added = group_first(pair, np.flatnonzero(added))
    once = np.zeros(len(pos), dtype=bool)
    once[first_added] = True
    out["added_points"] = total(once, join)
    removed = (leave > s) & (leave <= c)
    _, first_removed = group_first(pair, np.flatnonzero(removed))
    once = np.zeros(len(pos), dtype=bool)
    once[first_removed] = True
    out["removed_points"] = total(once, leave)
    return out


def board_velocity(sprint_rows: pd.DataFrame) -> pd.DataFrame:
    """`velocity_avg_3` per board: mean completed points of its three latest closed sprints
    (by completion); fewer closed sprints average what there is, none gives null."""
    columns = ["source", "board", "velocity_avg_3", "sprints_averaged"]
    closed = sprint_rows[sprint_rows["state"] == "closed"]
    boards = sprint_rows[["source", "board"]].drop_duplicates().sort_values(["source", "board"])
    if len(boards) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    latest = (closed.sort_values(["source", "board", "complete", "start"], kind="stable")
              .groupby(["source", "board"]).tail(3))
    agg = latest.groupby(["source", "board"])["completed_points"].agg(["mean", "size"])
    out = boards.merge(agg, left_on=["source", "board"], right_index=True, how="left")
    out = out.rename(columns={"mean": "velocity_avg_3", "size": "sprints_averaged"})
    out["sprints_averaged"] = out["sprints_averaged"].fillna(0).astype(np.int64)
    return out[columns].reset_index(drop=True)


def _iteration_origin(hist: ItemHistory, source: str, start: date | None) -> int | None:
    """`iteration_start` at 00:00 UTC; unset, the day of the source's first created card."""
    if start is not None:
        d = start.date() if isinstance(start, datetime) else start
        return int(pd.Timestamp(d.isoformat(), tz=UTC).value)
    mask = str_array(hist.items["source"]) == source
    if not mask.any():
        return None
    first = int(hist.created[mask].min())
    return first // NS_PER_DAY * NS_PER_DAY


def trello_iterations(hist: ItemHistory, inp: MetricsInput, sources: list[str] | None = None) -> pd.DataFrame:
    """Fixed iterations of every Trello project (board), empty ones included (§5)."""
    columns = ["source", "project", "start", "end", "completed_points"]
    frames = []
    item_source = str_array(hist.items["source"])
    proj = hist.projects
    for name, settings in sorted(inp.sources.items()):
        if settings.kind != "trello" or (sources is not None and name not in sources):
            continue
        origin = _iteration_origin(hist, name, settings.iteration_start)
        if origin is None or origin > hist.as_of:
            continue
        length = int(settings.iteration_days) * NS_PER_DAY
        count = int((hist.as_of - origin) // length) + 1
        board_ids = set(proj.loc[proj["source"] == name, "project"])
        board_ids |= set(inp.boards.loc[inp.boards["source"] == name, "board_id"].astype(object))
        pos = np.flatnonzero((item_source == name) & (hist.resolved != NAT))
        k = (hist.resolved[pos] - origin) // length
        ok = (k >= 0) & (k < count)
        pos, k = pos[ok], k[ok]
        points = np.nan_to_num(hist.points_at(pos, hist.resolved[pos]), nan=0.0)
        projects = hist.items["project"].to_numpy(dtype=object)[pos]
        starts = origin + np.arange(count, dtype=np.int64) * length
        for board in sorted(board_ids):
            sel = projects == board
            sums = np.bincount(k[sel], weights=points[sel], minlength=count)
            frames.append(pd.DataFrame({"source": name, "project": board, "start": starts,
                                        "end": starts + length, "completed_points": sums.astype(np.float64)}))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(frames, ignore_index=True)[columns]


def sprint_burndown(hist: ItemHistory, inp: MetricsInput, sprints: pd.DataFrame,
                    membership: Membership | None = None) -> pd.DataFrame:
    """Daily scope / completed / remaining points of each active sprint, with scope changes.

    Samples are taken at the sprint start, then every 24 h after it, then at `as_of`.
    `added_points` / `removed_points` cumulate every join / leave after the start (points
    at that moment), so scope(t) = committed + added - removed - changes of estimates.
    """
    columns = ["source", "board", "sprint_id", "at", "scope_points", "completed_points",
               "remaining_points", "added_points", "removed_points"]
    active = sprints[sprints["state"] == "active"]
    if len(active) == 0 or hist.n == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    m = membership if membership is not None else sprint_membership(hist, inp)
    frames = []
    for sprint in active.itertuples(index=False):
        sel = np.flatnonzero((m.source == sprint.source) & (m.sprint_id == sprint.sprint_id))
        start = int(sprint.start)
        samples = np.arange(start, hist.as_of + 1, NS_PER_DAY, dtype=np.int64)
        if samples[-1] != hist.as_of:
            samples = np.r_[samples, hist.as_of]
        pos, join = m.pos[sel], m.join[sel]
        leave = m.leave_or_forever()[sel]
        # Items x samples: a sprint holds hundreds of items and a few dozen samples.
        P = np.repeat(pos, len(samples))
        T = np.tile(samples, len(pos))
        J, L = np.repeat(join, len(samples)), np.repeat(leave, len(samples))
        member = (J <= T) & (T < L)
        points = np.nan_to_num(hist.points_at(P, T), nan=0.0) * member
        done = hist.category_at(P, T) == DONE
        slot = np.tile(np.arange(len(samples)), len(pos))
        scope = np.bincount(slot, weights=points, minlength=len(samples))
        completed = np.bincount(slot, weights=points * done, minlength=len(samples))
        joined = (J > start) & (J <= T)
        left = (L > start) & (L <= T)
        added = np.bincount(slot, weights=np.nan_to_num(hist.points_at(P, J), nan=0.0) * joined,
                            minlength=len(samples))
        lv = np.where(L == _FOREVER, T, L)
        removed = np.bincount(slot, weights=np.nan_to_num(hist.points_at(P, lv), nan=0.0) * left,
                              minlength=len(samples))
        frames.append(pd.DataFrame({
            "source": sprint.source, "board": sprint.board, "sprint_id": sprint.sprint_id, "at": samples,
            "scope_points": scope, "completed_points": completed, "remaining_points": scope - completed,
            "added_points": added, "removed_points": removed,
        }))
    return pd.concat(frames, ignore_index=True)[columns]
