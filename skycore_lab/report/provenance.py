"""The provenance of a report, in each format: HTML footer, Excel sheet, CSV sidecar, Parquet metadata.

What is recorded, and how it reaches :func:`skycore_lab.export_report`, is
:mod:`skycore_lab.provenance`'s business; this module writes it down:

``.html``
    a *Provenance* footer (a table: every fact of :meth:`Provenance.rows`);
``.xlsx``
    a ``provenance`` sheet with the same ``item``/``value`` rows;
``.csv``
    a JSON sidecar beside the file, ``<name>.csv.provenance.json``
    (:func:`sidecar_path`), holding :meth:`Provenance.to_dict`;
``.parquet``
    the same JSON in the file's key-value metadata under
    ``skycore_lab.provenance`` (:data:`PARQUET_KEY`;
    ``pyarrow.parquet.read_schema(path).metadata[b"skycore_lab.provenance"]``).
"""

from __future__ import annotations

import html
import inspect
import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..files import atomic_write
from ..provenance import Provenance, collect_provenance

__all__ = [
    "PROVENANCE_SHEET",
    "SIDECAR_SUFFIX",
    "PARQUET_KEY",
    "report_alpha",
    "report_provenance",
    "sidecar_path",
    "write_sidecar",
    "provenance_frame",
    "provenance_html",
    "write_parquet",
]

PROVENANCE_SHEET = "provenance"
#: Appended to a CSV report's file name for its provenance sidecar.
SIDECAR_SUFFIX = ".provenance.json"
#: Key of the provenance JSON in a Parquet report's key-value metadata.
PARQUET_KEY = b"skycore_lab.provenance"
_ITEM, _VALUE = "item", "value"


def report_alpha() -> float:
    """The significance level of a report's comparisons: :func:`skycore_lab.compare_arms`' default."""
    from ..stats.compare import compare_arms

    return float(inspect.signature(compare_arms).parameters["alpha"].default)


def report_provenance(provenance, deliveries: pd.DataFrame, events: pd.DataFrame | None, *, within_s: float,
                      as_of, alpha: float | None = None) -> Provenance:
    """The provenance a report records: the one given (or collected from the frames' attrs), with the
    report's own parameters.

    Parameters
    ----------
    provenance : Provenance, mapping or None
        A :class:`~skycore_lab.provenance.Provenance`
        (:func:`~skycore_lab.provenance.collect_provenance`); a mapping of
        :func:`collect_provenance` keyword arguments (``sources``,
        ``manifest``, ``design``…); or None: collected from the attrs of
        ``deliveries`` and ``events``.
    deliveries, events
        What the report is made from.
    within_s, as_of
        The report's parameters; they replace whatever the provenance held,
        together with the report's ``alpha`` (:func:`report_alpha`).
    alpha : float, optional
        The level the report's verdicts use (an experiment's result's
        ``alpha``); default :func:`report_alpha`.
    """
    if provenance is None:
        provenance = collect_provenance(deliveries, events=events)
    elif isinstance(provenance, Mapping):
        provenance = collect_provenance(deliveries, events=events, **dict(provenance))
    elif not isinstance(provenance, Provenance):
        from ..exceptions import SkycoreValidationError

        raise SkycoreValidationError(
            "provenance", f"expected a Provenance (collect_provenance), a dict or None, got {type(provenance).__name__}")
    when = None
    if as_of is not None:
        stamp = pd.Timestamp(as_of)
        when = (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).isoformat()
    level = report_alpha() if alpha is None else float(alpha)
    return replace(provenance, parameters={"as_of": when, "within_s": float(within_s), "alpha": level})


def provenance_json(provenance: Provenance) -> str:
    return json.dumps(provenance.to_dict(), indent=1, ensure_ascii=False, default=str)


def sidecar_path(path: str | os.PathLike) -> Path:
    """``report.csv`` → ``report.csv.provenance.json``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def write_sidecar(path: str | os.PathLike, provenance: Provenance) -> Path:
    """Write the provenance sidecar of the file ``path``; returns the sidecar's path."""
    text = provenance_json(provenance) + "\n"
    return atomic_write(sidecar_path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def provenance_frame(provenance: Provenance) -> pd.DataFrame:
    """The ``item``/``value`` rows of the provenance sheet."""
    return pd.DataFrame(provenance.rows(), columns=[_ITEM, _VALUE])


def provenance_html(provenance: Provenance) -> str:
    """The HTML page's footer: a heading and a table of every fact, all escaped."""
    rows = "".join(f"<tr><th>{html.escape(item)}</th><td>{html.escape(value)}</td></tr>"
                   for item, value in provenance.rows())
    return ('<footer class="provenance" id="provenance"><h2>Provenance</h2>'
            '<p class="note">What this report was made from. A file\'s SHA-256 is of the bytes that were read; '
            '<code>sha256sum</code> prints the same for an unchanged file.</p>'
            f'<div class="table-scroll"><table><tbody>{rows}</tbody></table></div></footer>')


def write_parquet(deliveries: pd.DataFrame, tmp: str, provenance: Provenance) -> None:
    """The deliveries as Parquet (dtypes kept), with the provenance in the key-value metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(deliveries, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[PARQUET_KEY] = provenance_json(provenance).encode("utf-8")
    pq.write_table(table.replace_schema_metadata(metadata), tmp)
