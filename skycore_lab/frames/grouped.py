"""Columns as integer codes and per-group reductions on sorted numpy arrays.

:func:`skycore_lab.deliveries` and :func:`skycore_lab.handset_profiles` work
on a million events in about the time pandas takes for one
``groupby().first()``: instead of object strings and a groupby per rule they

* read each text column once as integer codes into its sorted, normalised
  distinct values (:func:`text_codes`: the text :func:`as_text`
  gives, ``-1`` for missing), so comparing, ranking and taking values are
  integer operations on the few distinct values;
* sort the events once by (group, time) (:func:`group_time_order`) and then
  answer every "first/last row of the group where ..." with one pass over a
  boolean mask (:class:`SortedGroups`, :func:`first_positions`);
* build the returned text columns from codes only at the end
  (:func:`text_from_codes`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "as_text",
    "text_codes",
    "LazyText",
    "text_from_codes",
    "lookup",
    "time_key",
    "group_time_order",
    "SortedGroups",
    "first_positions",
    "last_positions",
    "take_codes",
]

_LAST = np.iinfo("int64").max


def as_text(series: pd.Series) -> pd.Series:
    """Strings (pandas ``str`` dtype), stripped, with empty strings as missing.

    Works on categorical, object and string columns alike.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        # Normalise the few categories, not the many rows.
        categories = pd.Series(series.cat.categories.astype("str")).str.strip()
        categories = categories.where(categories != "")
        values = categories.to_numpy(dtype=object, na_value=None)
        text = pd.Series(np.append(values, None)[series.cat.codes.to_numpy()], index=series.index, dtype="str")
        return text
    text = series.astype("str").str.strip()
    return text.where(text != "")


def text_codes(series: pd.Series, *, upper: bool = False) -> tuple[np.ndarray, pd.Index]:
    """``as_text(series)`` (upper-cased when ``upper``) as int32 codes and its sorted distinct values.

    Code ``-1`` is missing (missing, empty or blank). The categories are the
    distinct texts in the order :func:`pandas.factorize` ``(sort=True)`` gives
    the text, so comparing codes is comparing texts. Normalises the distinct
    values, never the rows.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.int32)
        values = series.cat.categories
    elif _arrow_strings(series):
        codes, values = _arrow_codes(series)
    else:
        codes, values = pd.factorize(series, sort=True, use_na_sentinel=True)
        codes = codes.astype(np.int32, copy=False)
    raw = pd.Series(values)
    text = raw.astype("str").str.strip()
    text = text.where(text != "")
    if upper:
        text = text.str.upper()
    if (
        not isinstance(series.dtype, pd.CategoricalDtype)
        and raw.dtype == text.dtype
        and text.notna().all()
        and bool((text == raw).all())
    ):
        return codes, pd.Index(text, dtype="str")  # already normalised, already sorted (the usual case)
    new_codes, categories = pd.factorize(text, sort=True, use_na_sentinel=True)
    recode = np.append(new_codes.astype(np.int32), np.int32(-1))  # code -1 (missing) stays -1; int32 stays int32
    return recode[codes], pd.Index(categories, dtype="str")


def _arrow_strings(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow"


def _arrow_codes(series: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes into the sorted distinct values of an Arrow-backed string column (one hash pass, one
    sort of the distinct values: what :func:`pandas.factorize` ``(sort=True)`` computes, cheaper)."""
    values = pa.array(series.array)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary
    sorter = pc.array_sort_indices(distinct).to_numpy()
    rank = np.empty(len(sorter) + 1, dtype=np.int32)
    rank[sorter] = np.arange(len(sorter))
    rank[-1] = -1  # missing
    indices = pc.fill_null(encoded.indices, -1).to_numpy()
    return rank[indices], pd.Index(pd.array(distinct.take(pa.array(sorter)), dtype=series.dtype))


class LazyText:
    """A text column read as :func:`as_text` would, encoded only as far as it is used.

    The rows' codes (:func:`text_codes`) cost a hash of every value, which
    for a column of distinct values (numbers) is most of the work; the first
    non-missing value per group needs only which rows are missing and the
    values at a few positions, and ranks are needed only among tied rows.
    """

    def __init__(self, series: pd.Series | None, length: int):
        self._series = series
        self._length = length
        self._codes: tuple[np.ndarray, pd.Index] | None = None

    def codes(self) -> tuple[np.ndarray, pd.Index]:
        if self._codes is None:
            if self._series is None:
                self._codes = np.full(self._length, -1, dtype=np.int32), pd.Index([], dtype="str")
            else:
                self._codes = text_codes(self._series)
        return self._codes

    def missing(self) -> np.ndarray:
        """Whether each row is missing (missing, empty or blank)."""
        if self._series is None:
            return np.ones(self._length, dtype=bool)
        if self._codes is None and _arrow_strings(self._series):
            values = pa.array(self._series.array)
            # Empty or all whitespace (the characters utf8_trim_whitespace strips), without new strings.
            blank = pc.or_(pc.equal(pc.binary_length(values), 0), pc.utf8_is_space(values))
            return np.asarray(pc.fill_null(blank, True).to_numpy(zero_copy_only=False), dtype=bool)
        return self.codes()[0] < 0

    def ranks(self, rows: np.ndarray, *, sort: bool = True) -> np.ndarray:
        """Integer keys of the values at ``rows`` (-1: missing), equal where the texts are equal,
        and ordered as the texts when ``sort``."""
        if self._series is None or self._codes is not None or not _arrow_strings(self._series):
            return self.codes()[0][rows]
        text = as_text(self._series.take(rows))
        return pd.factorize(text, sort=sort, use_na_sentinel=True)[0].astype(np.int64)

    def text_at(self, rows: np.ndarray) -> pd.Series:
        """The texts at ``rows`` (-1: missing), RangeIndex."""
        if self._series is None or self._codes is not None or not _arrow_strings(self._series):
            codes, categories = self.codes()
            return text_from_codes(take_codes(codes, rows), categories)
        text = as_text(self._series.take(np.maximum(rows, 0)).reset_index(drop=True))
        return text.where(rows >= 0)


def text_from_codes(codes: np.ndarray, categories: pd.Index) -> pd.Series:
    """The ``str`` column whose values are ``categories[codes]`` (code ``-1``: missing)."""
    codes = np.asarray(codes, dtype=np.int64)
    if len(categories) == 0:
        return pd.Series(pd.NA, index=pd.RangeIndex(len(codes)), dtype="str")
    values = pa.array(categories.array)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = pa.array(np.asarray(categories, dtype=object), type=pa.large_string())
    taken = pc.take(values, pa.array(np.where(codes < 0, 0, codes), mask=codes < 0))
    return pd.Series(pd.array(taken, dtype="str"))


def lookup(table, codes: np.ndarray, missing=False) -> np.ndarray:
    """``table[code]`` for each code, ``missing`` where the code is -1."""
    return np.append(np.asarray(table, dtype=np.asarray(missing).dtype), missing)[codes]


def time_key(values: np.ndarray) -> np.ndarray:
    """Sort key of ``datetime64`` values: their integer value, missing (NaT) last."""
    return np.where(np.isnat(values), _LAST, values.view(np.int64))


def group_time_order(group: np.ndarray, key: np.ndarray, ties=()) -> np.ndarray:
    """The permutation that sorts rows by ``(group, key, *ties)``.

    ``group`` are non-negative integers, ``key`` int64 (:func:`time_key`),
    ``ties`` further keys, most significant first: functions that give the
    int64 keys of the rows at the positions they are passed, called only for
    rows that share their group and key (so they cost only where such ties
    exist). One integer sort of (group, key) packed into an int64. Rows
    equal in every key come in no particular order: callers give keys
    enough that such rows carry the same values.
    """
    n = len(group)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    group = group.astype(np.int64, copy=False)
    known = key != _LAST
    if not known.all():  # missing times (the largest key) sort last: just after the latest known one
        key = np.where(known, key, int(key[known].max()) + 1 if known.any() else 0)
    low, high = int(key.min()), int(key.max())
    span = high - low + 1
    groups = int(group.max()) + 1
    if span <= 0 or groups > _LAST // span:  # too wide to pack: pack the keys' ranks instead
        distinct, key = np.unique(key, return_inverse=True)
        low, span = 0, len(distinct)
    packed = group * span  # in place below: a million rows are 8 MB per temporary
    packed += key
    packed -= low
    order = np.argsort(packed)
    del packed
    ordered = group[order]
    same = ordered[1:] == ordered[:-1]
    ordered = key[order]
    same &= ordered[1:] == ordered[:-1]
    del ordered
    return _break_ties(order, same, ties)


def _break_ties(order: np.ndarray, same: np.ndarray, ties) -> np.ndarray:
    """Refine ``order`` (``same[i]``: rows ``i`` and ``i + 1`` of it are tied) by the keys ``ties``, one key
    at a time, each computed only for the rows the previous keys left tied."""
    n = len(order)
    for tie in ties:
        if not same.any():
            break
        tied = np.zeros(n, dtype=bool)
        tied[1:] |= same
        tied[:-1] |= same
        where = np.flatnonzero(tied)
        run = np.cumsum(np.append(True, ~same[where[1:] - 1]))  # runs of tied rows are contiguous
        rows = order[where]
        values = np.asarray(tie(rows))
        resort = np.lexsort((values, run))
        order[where] = rows[resort]
        values, run = values[resort], run[resort]
        still = (where[1:] == where[:-1] + 1) & (run[1:] == run[:-1]) & (values[1:] == values[:-1])
        same = np.zeros(n - 1, dtype=bool)
        same[where[:-1][still]] = True
    return order


class SortedGroups:
    """Groups ``0 .. n-1`` of rows sorted by group, every group with at least one row.

    :meth:`first` and :meth:`last` answer "which row of each group is the
    first/last where ``mask`` holds" with one reduction over the rows. Positions
    are int32 below 2**31 rows (a dozen per-send arrays stay alive in
    :func:`skycore_lab.deliveries`: half the memory of int64).
    """

    def __init__(self, group: np.ndarray):
        self.size = len(group)
        boundary = np.ones(len(group), dtype=bool)
        boundary[1:] = group[1:] != group[:-1]
        self.starts = np.flatnonzero(boundary)
        self._positions = np.arange(len(group), dtype=np.int32 if len(group) < 2**31 - 1 else np.int64)

    def __len__(self) -> int:
        return len(self.starts)

    def first(self, mask: np.ndarray) -> np.ndarray:
        """Per group, the position of its first row where ``mask`` holds; -1 when none."""
        if not len(self.starts):
            return np.zeros(0, dtype=np.int64)
        best = np.minimum.reduceat(np.where(mask, self._positions, self.size), self.starts)
        return np.where(best == self.size, -1, best)

    def last(self, mask: np.ndarray) -> np.ndarray:
        """Per group, the position of its last row where ``mask`` holds; -1 when none."""
        if not len(self.starts):
            return np.zeros(0, dtype=np.int64)
        return np.maximum.reduceat(np.where(mask, self._positions, -1), self.starts)


def first_positions(group: np.ndarray, mask: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, the position of the first row where ``mask`` holds (rows sorted by group); -1 when none."""
    return _edge_positions(group, mask, n_groups, last=False)


def last_positions(group: np.ndarray, mask: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, the position of the last row where ``mask`` holds (rows sorted by group); -1 when none."""
    return _edge_positions(group, mask, n_groups, last=True)


def _edge_positions(group: np.ndarray, mask: np.ndarray, n_groups: int, last: bool) -> np.ndarray:
    where = np.flatnonzero(mask)
    found = np.full(n_groups, -1, dtype=np.int64)
    if len(where):
        owner = group[where]
        edge = np.ones(len(where), dtype=bool)
        if last:
            edge[:-1] = owner[1:] != owner[:-1]
        else:
            edge[1:] = owner[1:] != owner[:-1]
        found[owner[edge]] = where[edge]
    return found


def take_codes(codes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``codes[position]`` per group, -1 where the position is -1."""
    return np.where(positions >= 0, codes[np.maximum(positions, 0)], -1) if len(codes) else np.full(
        len(positions), -1, dtype=np.int64
    )
