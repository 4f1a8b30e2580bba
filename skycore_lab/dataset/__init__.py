"""A Parquet dataset of events that grows with the logs: :func:`ingest`, :func:`read_events`.

* :mod:`.ingest` — :func:`ingest`: new complete records of postback files,
  appended once, crash-safe, deduped across files and runs;
* :mod:`.read` — :func:`read_events`: the dataset as read_postbacks' frame
  (pandas) or a dask DataFrame;
* :mod:`.store` — the part files' schema and partitions;
* :mod:`.state` — the state file (the commit record) and the lock.
"""

from __future__ import annotations

from .ingest import IngestResult, ingest
from .read import read_events

__all__ = ["ingest", "IngestResult", "read_events"]
