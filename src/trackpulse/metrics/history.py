"""As-of replay of item histories (METRICS.md §1 and §2), shared by every family.

`replay()` keeps the items created by `as_of`, gives each a position 0..n-1, and turns
its status changelog into a *state table*: one row per state the item was in (the
creation state at `created`, then one per move up to `as_of`), sorted by item then
time, with `offsets` delimiting each item's rows. Every status question (category at
an instant, started, resolved, SLA running intervals, cumulative flow) is answered
from that table with array operations, never a loop over items.

It also owns the two other "value at instant t" replays: points (estimate history)
and the lookup of any frame's (source, item_id) to item positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trackpulse.metrics.frames import NAT, SMALL, MetricsInput, MetricsInputError, instants_ns, str_array

CATEGORY_CODES = {"todo": 0, "in_progress": 1, "done": 2}
CATEGORY_NAMES = ("todo", "in_progress", "done")
TODO, IN_PROGRESS, DONE = 0, 1, 2
NOT_EXISTING = -1  # category "at" an instant before the item was created


@dataclass(frozen=True)
class Window:
    """`[since, until)` selecting which events count; history itself stops at `as_of` (§2)."""

    as_of: int
    since: int | None
    until: int

    def contains(self, t: np.ndarray) -> np.ndarray:
        inside = (t != NAT) & (t < self.until)
        if self.since is not None:
            inside &= t >= self.since
        return inside


def category_codes(values: pd.Series | np.ndarray) -> np.ndarray:
    """int8 category codes; anything that is not in_progress or done counts as todo (§1).

    Two comparisons with constant strings, in C (equal objects short-cut), cost less than
    hashing ten million values into a factorization.
    """
    arr = raw_objects(values)
    codes = np.asarray(arr == "in_progress", dtype=bool).view(np.int8)  # a fresh array: ours to change
    codes[arr == "done"] = DONE
    return codes


def raw_objects(values: pd.Series | np.ndarray) -> np.ndarray:
    """The column's values as an object array, without a copy where pandas allows (a missing
    value may be NaN rather than None: only for comparisons with present strings)."""
    if isinstance(values, np.ndarray) and values.dtype == object:
        return values
    return np.asarray(pd.Series(values).to_numpy(dtype=object))


class ItemIndex:
    """Maps (source, item_id) of any frame to item positions (-1: not a kept item)."""

    def __init__(self, sources: np.ndarray, item_ids: np.ndarray) -> None:
        self._by_source: dict[str, tuple[pd.Index, np.ndarray]] = {}
        for src in pd.unique(sources):
            where = np.flatnonzero(sources == src)
            ids = pd.Index(item_ids[where])
            if not ids.is_unique:
                dup = ids[ids.duplicated()][0]
                raise MetricsInputError(f"source {src}: item_id {dup!r} appears twice in the items frame")
            self._by_source[str(src)] = (ids, where)

    def positions(self, sources: pd.Series, item_ids: pd.Series) -> np.ndarray:
        out = np.full(len(item_ids), -1, dtype=np.int64)
        if len(item_ids) == 0:
            return out
        src = raw_objects(sources)
        ids = raw_objects(item_ids)
        # Child frames hold each item's rows together: look up one row per run of equal
        # (source, item_id) and spread the answer over the run, 10x fewer hash look-ups.
        if len(ids) > 1:
            heads = np.flatnonzero(np.r_[True, (ids[1:] != ids[:-1]) | (src[1:] != src[:-1])])
            if len(heads) < len(ids):
                lengths = np.diff(np.r_[heads, len(ids)])
                return np.repeat(self._lookup(src[heads], ids[heads]), lengths)
        return self._lookup(src, ids)

    def _lookup(self, src: np.ndarray, ids: np.ndarray) -> np.ndarray:
        out = np.full(len(ids), -1, dtype=np.int64)
        for name, (index, where) in self._by_source.items():
            mask = src == name
            if mask.all():  # one source, the common case: no masking of the big frames
                loc = index.get_indexer(ids)
                return np.where(loc >= 0, where[np.maximum(loc, 0)], -1)
            loc = index.get_indexer(ids[mask])
            out[mask] = np.where(loc >= 0, where[np.maximum(loc, 0)], -1)
        return out


def segment_last_le(values: np.ndarray, offsets: np.ndarray, q_seg: np.ndarray, q_val: np.ndarray) -> np.ndarray:
    """For each query, the index of the last row of segment `q_seg` whose value <= `q_val`, or -1.

    Rows are sorted by value inside each segment [offsets[s], offsets[s+1]). A binary search
    run on all queries at once: log2(longest segment) rounds of array operations.
    """
    lo = offsets[q_seg].astype(np.int64)
    hi = offsets[q_seg + 1].astype(np.int64)
    start = lo.copy()
    if len(values) == 0:
        return np.full(len(q_seg), -1, dtype=np.int64)
    last = len(values) - 1
    while True:
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        le = values[np.minimum(mid, last)] <= q_val
        lo = np.where(active & le, mid + 1, lo)
        hi = np.where(active & ~le, mid, hi)
    found = lo - 1
    return np.where(found >= start, found, -1)


def group_first(groups: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group, first row) of each group among `rows`, given rows in ascending group order."""
    if len(rows) == 0:
        return rows.astype(np.int64), rows.astype(np.int64)
    g = groups[rows]
    head = np.r_[True, g[1:] != g[:-1]]
    return g[head], rows[head]


def group_last(groups: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group, last row) of each group among `rows`, given rows in ascending group order."""
    if len(rows) == 0:
        return rows.astype(np.int64), rows.astype(np.int64)
    g = groups[rows]
    tail = np.r_[g[1:] != g[:-1], True]
    return g[tail], rows[tail]


class StateStatuses:
    """The status ids of the state table, kept as the creation statuses (one per item) and the
    transitions' own "to" column with the rows of it that are moves: gathering ten million
    object references into a new array costs more than every question asked of it."""

    def __init__(self, initial: np.ndarray, to_id: np.ndarray, moves: np.ndarray, move_rows: np.ndarray,
                 init_rows: np.ndarray, size: int) -> None:
        self.initial, self.to_id, self.moves, self.move_rows = initial, to_id, moves, move_rows
        self.init_rows, self.size = init_rows, size
        self._all: np.ndarray | None = None
        self.memo: dict[tuple[tuple[str, tuple[str, ...]], ...], np.ndarray] = {}

    def all(self) -> np.ndarray:
        if self._all is None:
            out = np.empty(self.size, dtype=object)
            out[self.move_rows] = self.to_id[self.moves]
            out[self.init_rows] = self.initial
            self._all = out
        return self._all

    def isin(self, ids: Sequence[str], of_source: np.ndarray | None, st_pos: np.ndarray) -> np.ndarray:
        """Per state row: status in `ids` (and, given `of_source` per item, the item is of that source)."""
        out = np.zeros(self.size, dtype=bool)
        out[self.init_rows] = pd.Index(self.initial).isin(ids) if len(self.initial) else np.zeros(0, dtype=bool)
        hit = np.zeros(len(self.to_id), dtype=bool)
        for status_id in ids:  # a handful of ids: comparisons beat hashing every row
            hit |= self.to_id == status_id
        out[self.move_rows] = hit[self.moves]
        if of_source is not None:
            out &= of_source[st_pos]
        return out


@dataclass
class ItemHistory:
    """Items created by `as_of` and their replayed histories, all keyed by item position."""

    as_of: int
    items: pd.DataFrame  # RangeIndex = item position
    index: ItemIndex
    created: np.ndarray  # int64 ns
    started: np.ndarray  # int64 ns or NAT
    resolved: np.ndarray  # int64 ns or NAT
    category_now: np.ndarray  # int8, as of as_of
    status_now: np.ndarray  # object status ids, as of as_of
    points_now: np.ndarray  # float, the current (latest) value
    project_code: np.ndarray  # int64 into `projects`
    projects: pd.DataFrame  # source, project; sorted, RangeIndex = project code
    # State table: row r is item st_pos[r] in status st_status[r] from st_at[r] on.
    offsets: np.ndarray
    st_pos: np.ndarray
    st_at: np.ndarray
    statuses: StateStatuses  # st_status, built only when asked (statuses_in answers most questions)
    st_cat: np.ndarray
    st_initial: np.ndarray  # bool: the creation state (not a move)
    # Estimate history sorted by item then time.
    est_offsets: np.ndarray
    est_at: np.ndarray
    est_to: np.ndarray
    points_before_changes: np.ndarray  # float per item: first change's "from", else current

    @property
    def n(self) -> int:
        return len(self.created)

    def release_states(self) -> None:
        """Drop the state and estimate tables (hundreds of MB at a million items) once no family
        will ask them again; item-level fields (items, created, resolved, project_code...) stay."""
        empty = np.zeros(0, dtype=np.int64)
        self.st_pos = self.st_at = self.est_at = self.est_to = empty
        self.st_cat, self.st_initial = np.zeros(0, dtype=np.int8), np.zeros(0, dtype=bool)
        self.statuses = StateStatuses(empty.astype(object), empty.astype(object), empty, empty, empty, 0)

    @property
    def st_status(self) -> np.ndarray:
        """The status id of every state row (object array)."""
        return self.statuses.all()

    def statuses_in(self, wanted: Mapping[str, Iterable[str]]) -> np.ndarray:
        """Per state row: is its status one of `wanted[source]` (status ids), for its item's source."""
        key = tuple(sorted((str(k), tuple(sorted(v))) for k, v in wanted.items()))
        if key in self.statuses.memo:  # policies sharing their pause statuses ask the same
            return self.statuses.memo[key]
        out = np.zeros(len(self.st_at), dtype=bool)
        self.statuses.memo[key] = out
        item_source = str_array(self.items["source"])
        present = set(pd.unique(item_source))
        for source, ids in wanted.items():
            ids = list(ids)
            if not ids or source not in present:
                continue
            of_source = None if len(present) == 1 else item_source == source
            out |= self.statuses.isin(ids, of_source, self.st_pos)
        return out

    def st_end(self) -> np.ndarray:
        """Each state's end: the next state's start, or `as_of` for an item's last state."""
        end = np.empty_like(self.st_at)
        if len(end):
            end[:-1] = self.st_at[1:]
            end[self.offsets[1:] - 1] = self.as_of
        return end

    def category_at(self, pos: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Category code of each item at each instant (<= as_of); NOT_EXISTING before `created`."""
        row = segment_last_le(self.st_at, self.offsets, pos, t)
        cat = np.where(row >= 0, self.st_cat[np.maximum(row, 0)], NOT_EXISTING)
        return np.where(t >= self.created[pos], cat, NOT_EXISTING).astype(np.int8)

    def points_at(self, pos: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Points of each item at each instant: the estimate history replayed up to and including t."""
        row = segment_last_le(self.est_at, self.est_offsets, pos, t)
        before = self.points_before_changes[pos]
        if len(self.est_to) == 0:
            return before.astype(np.float64)
        return np.where(row >= 0, self.est_to[np.maximum(row, 0)], before)


def replay(inp: MetricsInput, as_of: int, sources: Sequence[str] | None = None) -> ItemHistory:
    """Replay every item's history up to and including `as_of` (int64 ns)."""
    items = inp.items
    if sources is not None:
        items = items[items["source"].isin(list(sources))]
    created_all = instants_ns(items["created"])
    keep = created_all <= as_of
    if keep.all() and isinstance(items.index, pd.RangeIndex) and items.index.start == 0 and items.index.step == 1:
        created = created_all  # every item exists by as_of: the frame as it is, no copy
    else:
        items = items[keep].reset_index(drop=True)
        created = created_all[keep]
    n = len(items)
    index = ItemIndex(str_array(items["source"]), str_array(items["item_id"]))

    projects, project_code = _project_codes(items)

    # --- status history -------------------------------------------------------------
    # Ten million transitions: object columns are read without copies, gathered only where
    # rows need reordering, and the "from" side only at each item's first row (the status at
    # creation); statuses stay as the transitions' own strings until a caller asks.
    tr = inp.transitions
    pos = index.positions(tr["source"], tr["item_id"])
    sel: np.ndarray | None = np.flatnonzero(pos >= 0)
    if sel is not None and len(sel) == len(pos):
        sel = None  # every row is a kept item's: no gather
    at = instants_ns(tr["at"])
    seq = tr["seq"].to_numpy(dtype=np.int64)
    if sel is not None:
        pos, at, seq = pos[sel], at[sel], seq[sel]
    order = _history_order(pos, at, seq)
    if order is not None:
        pos, at = pos[order], at[order]
    take = order if sel is None else (sel if order is None else sel[order])
    to_id = _gather(raw_objects(tr["to_status_id"]), take)
    to_cat = _gather(category_codes(tr["to_category"]), take)

    # The status at creation: the earliest transition's "from", or the creation record's "to";
    # with no transitions at all, the current status.
    init_status = str_array(items["status_id"]).copy()
    init_cat = category_codes(items["status_category"])
    first_pos, first_row = group_first(pos, np.arange(len(pos)))
    first_src = first_row if take is None else take[first_row]
    first_from = str_array(tr["from_status_id"].iloc[first_src]) if len(first_src) else np.empty(0, dtype=object)
    first_has_from = pd.notna(first_from)
    first_from_cat = category_codes(tr["from_category"].iloc[first_src]) if len(first_src) else np.zeros(0, np.int8)
    init_status[first_pos] = np.where(first_has_from, first_from, to_id[first_row])
    init_cat[first_pos] = np.where(first_has_from, first_from_cat, to_cat[first_row])
    is_creation = np.zeros(len(pos), dtype=bool)
    is_creation[first_row] = ~first_has_from

    moves = np.flatnonzero(~is_creation & (at <= as_of))
    m_pos = pos[moves]
    # A move stamped before its item's creation (clock skew between systems) counts at creation.
    m_at = np.maximum(at[moves], created[m_pos]) if n else at[moves]

    counts = 1 + np.bincount(m_pos, minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    move_counts = counts - 1
    move_starts = np.cumsum(move_counts) - move_counts  # index of each item's first move in `moves`
    rank = np.arange(len(moves), dtype=np.int64) - move_starts[m_pos]
    move_rows = offsets[m_pos] + 1 + rank
    init_rows = offsets[:-1]

    size = int(offsets[-1])
    # Positions and row numbers fit 32 bits far beyond a million items: half the memory of the
    # largest arrays the replay keeps.
    index_type = np.int32 if max(n, len(tr)) < 2**31 - 1 else np.int64
    st_pos = np.repeat(np.arange(n, dtype=index_type), counts)
    st_at = np.empty(size, dtype=np.int64)
    st_cat = np.empty(size, dtype=np.int8)
    st_initial = np.zeros(size, dtype=bool)
    st_at[init_rows], st_cat[init_rows] = created, init_cat
    st_initial[init_rows] = True
    st_at[move_rows], st_cat[move_rows] = m_at, to_cat[moves]

    last_rows = offsets[1:] - 1
    category_now = st_cat[last_rows] if n else np.zeros(0, dtype=np.int8)
    status_now = init_status.copy()
    moved = np.flatnonzero(move_counts > 0)
    status_now[moved] = to_id[moves[move_starts[moved] + move_counts[moved] - 1]]
    statuses = StateStatuses(init_status, to_id, moves.astype(index_type), move_rows.astype(index_type),
                             init_rows, size)

    # started: the first state in an in_progress category, creation included.
    started = np.full(n, NAT, dtype=np.int64)
    g, r = group_first(st_pos, np.flatnonzero(st_cat == IN_PROGRESS))
    started[g] = st_at[r]

    # resolved: the last entry into done (from a non-done state, creation in done included),
    # only for items done as of as_of; a reopened item is not resolved.
    prev_cat = np.empty(size, dtype=np.int8)
    if size:
        prev_cat[1:] = st_cat[:-1]
    prev_cat[init_rows] = -1
    entries = np.flatnonzero((st_cat == DONE) & (prev_cat != DONE))
    resolved = np.full(n, NAT, dtype=np.int64)
    g, r = group_last(st_pos, entries)
    resolved[g] = st_at[r]
    resolved[category_now != DONE] = NAT

    # --- estimate history ------------------------------------------------------------
    points_now = items["points"].to_numpy(dtype=np.float64, na_value=np.nan)
    ec = inp.estimate_changes
    e_pos = index.positions(ec["source"], ec["item_id"])
    e_sel = np.flatnonzero(e_pos >= 0)
    e_pos = e_pos[e_sel]
    e_at = instants_ns(ec["at"])[e_sel]
    e_order = _history_order(e_pos, e_at, ec["seq"].to_numpy(dtype=np.int64)[e_sel])
    if e_order is None:  # already in (item, time, seq) order, as the loader writes it
        e_take = e_sel
    else:
        e_take = e_sel[e_order]
        e_pos, e_at = e_pos[e_order], e_at[e_order]
    e_to = ec["to_points"].to_numpy(dtype=np.float64, na_value=np.nan)[e_take]
    e_from = ec["from_points"].to_numpy(dtype=np.float64, na_value=np.nan)[e_take]
    est_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(e_pos, minlength=n), out=est_offsets[1:])
    points_before = points_now.copy()
    g, r = group_first(e_pos, np.arange(len(e_pos)))
    points_before[g] = e_from[r]

    return ItemHistory(
        as_of=as_of, items=items, index=index, created=created, started=started, resolved=resolved,
        category_now=category_now, status_now=status_now, points_now=points_now,
        project_code=project_code, projects=projects, offsets=offsets, st_pos=st_pos, st_at=st_at,
        statuses=statuses, st_cat=st_cat, st_initial=st_initial, est_offsets=est_offsets,
        est_at=e_at, est_to=e_to, points_before_changes=points_before,
    )


def _gather(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    return values if order is None else values[order]


def _history_order(pos: np.ndarray, at: np.ndarray, seq: np.ndarray) -> np.ndarray | None:
    """The order sorting changelog rows by item, time, seq: None when they already are.

    The loader and most callers hand rows in that order; checking it is one linear pass,
    where a three-key lexsort of ten million rows costs seconds. The pass runs over blocks of
    a million rows: its temporaries are reused from block to block instead of being a dozen
    fresh 80 MB arrays.
    """
    if len(pos) <= 1:
        return None
    block = 1 << 20
    for lo in range(0, len(pos) - 1, block):
        hi = min(lo + block + 1, len(pos))
        dp, da, ds = np.diff(pos[lo:hi]), np.diff(at[lo:hi]), np.diff(seq[lo:hi])
        if not bool(((dp > 0) | ((dp == 0) & ((da > 0) | ((da == 0) & (ds >= 0))))).all()):
            return np.lexsort((seq, at, pos))
    return None


def _project_codes(items: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    if len(items) == 0:
        return pd.DataFrame({"source": pd.Series(dtype=object), "project": pd.Series(dtype=object)}), np.zeros(
            0, dtype=np.int64
        )
    if len(items) <= SMALL:  # a scoped evaluation's few items: a groupby's set-up costs milliseconds
        pairs = list(zip(items["source"].tolist(), items["project"].tolist(), strict=True))
        if all(isinstance(s, str) and isinstance(p, str) for s, p in pairs):
            uniq = sorted(set(pairs))
            code = {pair: n for n, pair in enumerate(uniq)}
            return (pd.DataFrame({"source": pd.Series([s for s, _ in uniq], dtype=object),
                                  "project": pd.Series([p for _, p in uniq], dtype=object)}),
                    np.fromiter((code[pair] for pair in pairs), dtype=np.int64, count=len(pairs)))
    keys = items[["source", "project"]].astype(object)
    grouped = keys.groupby(["source", "project"], sort=True)
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    projects = grouped.size().reset_index()[["source", "project"]].astype(object)
    return projects, codes
