"""read_events: a dataset written by :func:`skycore_lab.ingest`, as pandas or dask."""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .. import columns as col
from ..distributed.engine import require_dask
from ..exceptions import DatasetError
from .state import STATE_FILE, read_state
from .store import KEY, PARTITION, STORED_SCHEMA, SUB, to_frame

__all__ = ["read_events", "events_meta"]

_ORDER = (col.RECEIVED_AT, col.SOURCE, col.LINE, SUB)
_PARTITIONING = ds.partitioning(pa.schema([(PARTITION, pa.string())]), flavor="hive")


def _columns(columns) -> list[str]:
    known = [*col.EVENT_FRAME_COLUMNS, PARTITION]
    if columns is None:
        return list(col.EVENT_FRAME_COLUMNS)
    names = [columns] if isinstance(columns, str) else list(columns)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise DatasetError(f"unknown column(s) {unknown}; a dataset has {known}")
    return names


def _expression(filters):
    if filters is None or isinstance(filters, ds.Expression):
        return filters
    return pq.filters_to_expression(filters)


def _committed(dataset: str) -> tuple[list[str], dict]:
    if not os.path.isfile(os.path.join(dataset, STATE_FILE)):
        raise DatasetError(f"{dataset}: not an events dataset (no {STATE_FILE}; create one with skycore_lab.ingest)")
    state = read_state(dataset)
    return [os.path.join(dataset, relative) for relative in state["parts"]], state


def events_meta(columns: list[str] | None = None) -> pd.DataFrame:
    """An empty frame with the dataset's columns and dtypes (what dask's ``meta`` is)."""
    empty = STORED_SCHEMA.empty_table()
    empty = empty.append_column(PARTITION, pa.array([], pa.string()))
    return to_frame(empty, _columns(columns))


def read_events(
    dataset,
    engine: Literal["pandas", "dask"] = "pandas",
    filters=None,
    columns: list[str] | None = None,
):
    """Read a dataset written by :func:`skycore_lab.ingest`.

    Parameters
    ----------
    dataset : str or os.PathLike
        The dataset's folder.
    engine : {"pandas", "dask"}, default "pandas"
        ``"pandas"``: one frame in memory. ``"dask"``: a lazy
        :class:`dask.dataframe.DataFrame` (needs ``pip install
        "skycore-lab[dask]"``; without it :class:`~skycore_lab.DaskNotInstalledError`).
    filters : list of tuples, list of lists of tuples, or pyarrow.dataset.Expression, optional
        Row filters in pyarrow's form (:func:`pyarrow.parquet.filters_to_expression`),
        on any column and on the partition ``event_date`` (``"YYYY-MM-DD"``
        text, ``"unknown"`` for rows without a time), e.g.
        ``[("event_date", ">=", "2026-03-01"), ("code", "in", ["N101", "E102"])]``.
    columns : list of str, optional
        Columns to read (default: all of :data:`skycore_lab.columns.EVENT_FRAME_COLUMNS`;
        ``event_date`` may be asked for too).

    Returns
    -------
    pandas.DataFrame or dask.dataframe.DataFrame
        The columns and dtypes of :func:`skycore_lab.read_postbacks` (see
        its table). With pandas, the frame ``read_postbacks`` would return on
        the ingested files: rows in arrival order (``received_at``, missing
        last), ties in the order files were first ingested, then ``line``
        and the notification's place in its record; categories are the
        values present, sorted (``read_postbacks`` lists them in the order
        first met, which depends on how the files were read, and its
        ``source`` also lists files whose every record was a retry). With dask, one partition per row
        group of the committed part files, rows in file order (no global
        sort); categoricals have unknown categories (``.cat.as_known()``
        computes them).

    Notes
    -----
    Only part files the state file lists are read: a run in progress, or one
    killed before its commit, is invisible. A part replaced by a run that
    committed after the list was read is retried once.
    """
    dataset = os.fspath(dataset)
    names = _columns(columns)
    if engine == "dask":
        return _read_dask(dataset, filters, names)
    if engine != "pandas":
        raise DatasetError(f"engine must be 'pandas' or 'dask', not {engine!r}")
    for attempt in (1, 2):
        paths, state = _committed(dataset)
        try:
            return _read_pandas(dataset, paths, state, filters, names)
        except FileNotFoundError as exc:
            if attempt == 2:
                raise DatasetError(f"{dataset}: a committed part file is missing ({exc}); "
                                   "the dataset was changed by hand") from None
    raise AssertionError("unreachable")


def _read_pandas(dataset: str, paths: list[str], state: dict, filters, names: list[str]) -> pd.DataFrame:
    if not paths:
        return events_meta(names)
    data = ds.dataset(paths, format="parquet", partitioning=_PARTITIONING, partition_base_dir=dataset)
    wanted = list(dict.fromkeys([*names, *_ORDER]))
    table = data.to_table(columns=wanted, filter=_expression(filters))
    ranks = {name: i for i, name in enumerate(state["sources"])}
    source = table.column(col.SOURCE).cast(pa.string()).to_pandas().map(ranks).fillna(len(ranks))
    received = table.column(col.RECEIVED_AT)
    order = pd.DataFrame({
        "missing": received.is_null().to_numpy(zero_copy_only=False),
        "received": received.cast(pa.int64()).fill_null(0).to_numpy(),
        "rank": source.to_numpy(dtype=np.int64),
        "line": table.column(col.LINE).to_numpy(),
        "sub": table.column(SUB).to_numpy(),
    })
    index = order.sort_values(["missing", "received", "rank", "line", "sub"], kind="stable").index.to_numpy()
    return to_frame(table.take(pa.array(index)), names)


def _read_dask(dataset: str, filters, names: list[str]):
    dd = require_dask('read_events(engine="dask")')
    paths, _state = _committed(dataset)
    meta = events_meta(names)
    if not paths:
        return dd.from_pandas(meta, npartitions=1)
    stored = [name for name in names if name != PARTITION]
    frame = dd.read_parquet(
        paths, columns=[*stored, *( [PARTITION] if PARTITION in names else [])], filters=filters,
        dataset={"partitioning": _PARTITIONING, "partition_base_dir": dataset}, split_row_groups=True,
        dtype_backend=None, calculate_divisions=False,
    )
    from dask.dataframe.utils import clear_known_categories

    # each partition's categories are its own: the meta says they are unknown (as dask's own reader does)
    return frame.map_partitions(_typed, names, meta=clear_known_categories(meta))


def _typed(part: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """A dask partition as read_postbacks' dtypes (categories: those present, sorted)."""
    table = pa.Table.from_pandas(part, preserve_index=False)
    if KEY in table.column_names:
        table = table.drop_columns([KEY])
    return to_frame(table, names)
