"""Checking what callers pass in: one wording for a missing column, one for a wrong type.

Every function that takes a frame (the frames, the statistics, the plots,
the reports) asks :func:`require_columns` for the columns it needs, so a
missing column is always reported the same way: which column, what it was
needed for, and which columns the frame has.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .exceptions import SkycoreValidationError

__all__ = ["require_frame", "require_columns"]


def require_frame(value: object, what: str) -> pd.DataFrame:
    """``value`` if it is a DataFrame, else a :class:`SkycoreValidationError` naming ``what``."""
    if not isinstance(value, pd.DataFrame):
        raise SkycoreValidationError(what, f"expected a pandas DataFrame, got {type(value).__name__}")
    return value


def require_columns(
    frame: pd.DataFrame,
    names: Iterable[str],
    what: str,
    *,
    why: str = "",
    field: str | None = None,
    field_is_column: bool = False,
) -> pd.DataFrame:
    """``frame`` if it has every column in ``names``; else raise naming the missing ones.

    Parameters
    ----------
    frame : DataFrame
    names : iterable of str
        The columns needed.
    what : str
        What the frame is (``"events"``, ``"deliveries"``, ``"manifest"``).
    why : str, optional
        What the columns are needed for (``"to group by"``).
    field : str, optional
        The error's ``field`` (the argument at fault): default ``what``.
    field_is_column : bool
        Name the first missing column as the ``field`` instead (the
        statistics do: their columns are arguments).

    Raises
    ------
    SkycoreValidationError
        ``"<what>: missing required column(s): a, b, needed <why> (the frame has: …)"``.
    """
    require_frame(frame, what)
    missing = [name for name in names if name not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns)) or "no columns"
        needed = f", needed {why}" if why else ""
        raise SkycoreValidationError(
            missing[0] if field_is_column else (field or what),
            f"missing required column(s): {', '.join(map(str, missing))}{needed} (the {what} frame has: {have})",
        )
    return frame
