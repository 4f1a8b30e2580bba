"""Where the Dask engine runs: a new local cluster, or an existing scheduler (:func:`dask_client`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from .engine import require_dask

__all__ = ["WORKER_MEMORY_LIMIT", "dask_client"]

#: Memory limit of each worker of a local cluster: dask spills to disk near it and restarts a worker
#: past it, so a big dataset never takes the machine down. The scale benchmark holds every worker under it.
WORKER_MEMORY_LIMIT = "2GiB"


@contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int | None = None, threads_per_worker: int = 1,
                memory_limit: str | int = WORKER_MEMORY_LIMIT, processes: bool = True) -> Iterator:  # fmt: skip
    """A ``distributed.Client``, made the default for dask computations while the block runs.

    Parameters
    ----------
    scheduler : str, optional
        Address of an existing scheduler (``"tcp://scheduler:8786"``): the
        client connects to it and leaves the cluster running on exit. None:
        a new ``distributed.LocalCluster`` on this machine, closed on exit.
    n_workers : int, optional
        Workers of the local cluster; default one per CPU core (at least 1).
    threads_per_worker : int
        Threads of each local worker. One: pandas work holds the GIL, so
        processes, not threads, give the parallelism.
    memory_limit : str or int
        Memory limit of each local worker (:data:`WORKER_MEMORY_LIMIT`).
    processes : bool
        Workers in their own processes (default) or as threads of this one.

    Raises
    ------
    DaskNotInstalledError
        dask or distributed is not installed.
    """
    require_dask("running on a Dask cluster")
    import distributed

    if scheduler is not None:
        client = distributed.Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    workers = n_workers if n_workers is not None else max(1, os.cpu_count() or 1)
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                                       memory_limit=memory_limit, processes=processes,
                                       dashboard_address=":0")  # fmt: skip  (a free port: never clashes)
    try:
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
