"""The Dask engine's plumbing: telling a dask frame, importing dask, folding partitions.

Nothing here knows a statistic or a frame: the public functions of
:mod:`skycore_lab.frames` and :mod:`skycore_lab.stats` hand in their own
per-partition function (the one their pandas path uses), so each rule
stays defined once and no module here imports theirs back.

* :func:`is_dask` — whether a value is a dask collection, without importing
  dask (``import skycore_lab`` and every pandas call stay dask-free);
* :func:`require_dask` — import dask and distributed, or raise
  :class:`~skycore_lab.exceptions.DaskNotInstalledError` saying what to install;
* :func:`fold_partitions` — run a fold (partition → small pandas frame) on
  every partition on the cluster and bring back only the folds, with the
  frame's latest known time resolved first when the fold needs it;
* :func:`latest_time_on_cluster` — :func:`skycore_lab.frames.times.latest_time`
  of a whole dask frame, computed on the cluster.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from types import ModuleType

import pandas as pd

from ..exceptions import DaskNotInstalledError

__all__ = ["DASK_EXTRA_HINT", "is_dask", "require_dask", "empty_like", "known_categories", "fold_partitions", "latest_time_on_cluster"]

#: What to install for the Dask engine (the extra of pyproject.toml).
DASK_EXTRA_HINT = 'pip install "skycore-lab[dask]"'


def is_dask(value) -> bool:
    """Whether ``value`` is a dask collection (a dask DataFrame, Series, ...).

    Tested by dask's own protocol (a callable ``__dask_graph__``, what
    ``dask.is_dask_collection`` checks), so that no pandas call imports dask.
    """
    graph = getattr(type(value), "__dask_graph__", None)
    return callable(graph)


def require_dask(purpose: str = "analysing a dask DataFrame") -> ModuleType:
    """Import and return ``dask.dataframe``, after checking ``distributed`` is importable too.

    Raises
    ------
    DaskNotInstalledError
        dask or distributed is missing; the message names the extra to install.
    """
    try:
        import dask.dataframe as dd
        import distributed  # noqa: F401  (the engine runs on a distributed cluster)
    except ImportError as exc:
        raise DaskNotInstalledError(
            f"{purpose} needs dask and distributed, which are not installed: {DASK_EXTRA_HINT}"
        ) from exc
    return dd


def empty_like(frame) -> pd.DataFrame:
    """The empty pandas frame of a dask frame's columns and dtypes (its meta), for checks before any work."""
    require_dask()
    from dask.dataframe.utils import make_meta

    return make_meta(frame)


def known_categories(frame, column: str) -> list | None:
    """The categories of a dask frame's categorical column when dask knows them, else None."""
    require_dask()
    from dask.dataframe.utils import has_known_categories

    meta = empty_like(frame)[column]
    if isinstance(meta.dtype, pd.CategoricalDtype) and has_known_categories(frame[column]):
        return list(meta.cat.categories)
    return None


def _latest(part: pd.DataFrame, events: bool):
    """The latest known time of one partition (deliveries or events), None without any."""
    # imported here: skycore_lab.frames imports this module (its functions dispatch on dask frames)
    from ..frames.times import latest_time

    return latest_time(None, part) if events else latest_time(part)


def _latest_of(*stamps):
    known = [stamp for stamp in stamps if stamp is not None]
    return max(known) if known else None


def _as_of_task(parts: list, as_of, events: bool = False):
    """A delayed latest known time of a frame's delayed partitions (or ``as_of`` itself when given)."""
    if as_of is not None:
        return as_of
    import dask

    return dask.delayed(_latest_of)(*[dask.delayed(_latest)(part, events) for part in parts])


def latest_time_on_cluster(frame, *, events: bool = False) -> pd.Timestamp | None:
    """:func:`skycore_lab.frames.times.latest_time` of a dask frame: per partition on the cluster, then the maximum.

    ``events=True`` reads the frame as events (TIMESTAMP and ``received_at``),
    else as deliveries (:data:`skycore_lab.frames.times.TIME_COLUMNS`).
    """
    require_dask()
    import dask

    (moment,) = dask.compute(_as_of_task(frame.to_delayed(), None, events))
    return moment


# catch_warnings swaps process-wide state: folds on a worker's threads take turns (a fold is small work;
# the partitions it reads were computed by other tasks)
_WARNINGS_LOCK = threading.Lock()


def _fold_one(part: pd.DataFrame, fold: Callable, args: tuple, kwargs: dict):
    """``fold(part, *args, **kwargs)`` on a worker, with the warnings it gave (to be re-emitted here)."""
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fold(part, *args, **kwargs)
    return result, [(w.category, str(w.message)) for w in caught]


def fold_partitions(frame, function: Callable, /, *args, resolve_as_of: bool = False, as_of=None, **kwargs) -> pd.DataFrame:
    """Fold every partition of a dask frame on the cluster; return the folds, concatenated.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        One row per send (or per event).
    function : callable
        The fold, ``function(partition, *args, **kwargs) -> pandas.DataFrame``: a small frame
        of sufficient statistics (counts per group, per latency value). It
        must be importable by the workers (a module-level function).
    resolve_as_of : bool
        Pass ``as_of=`` to ``function``: ``as_of`` when given, else the latest
        known time of the whole frame (:func:`latest_time_on_cluster`),
        computed in the same graph, before any fold runs, so every
        partition censors at the same moment the pandas path would use.
    as_of : timestamp-like, optional
        The caller's ``as_of`` (with ``resolve_as_of``).

    Returns
    -------
    pandas.DataFrame
        The folds in partition order (``ignore_index``).

    Notes
    -----
    Warnings ``function`` gives on a worker are re-emitted here, once per distinct
    message (one per partition that had something to say: the counts in the
    messages are per partition).
    """
    require_dask()
    import dask

    parts = frame.to_delayed()  # once: the latest time and the folds read the same partitions
    if resolve_as_of:
        kwargs = {**kwargs, "as_of": _as_of_task(parts, as_of)}
    tasks = [dask.delayed(_fold_one)(part, function, args, kwargs) for part in parts]
    results = dask.compute(*tasks)
    seen: set[tuple] = set()
    for _folded, caught in results:
        for category, message in caught:
            if (category, message) not in seen:
                seen.add((category, message))
                warnings.warn(message, category, stacklevel=3)
    folds = [folded for folded, _caught in results]
    return pd.concat(folds, ignore_index=True) if folds else pd.DataFrame()
