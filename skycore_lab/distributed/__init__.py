"""The Dask engine: the frames and statistics of skycore-lab on dask DataFrames.

Hand :func:`skycore_lab.deliveries`, :func:`skycore_lab.handset_profiles`,
:func:`skycore_lab.delivery_rates`, :func:`skycore_lab.latency_summary`,
:func:`skycore_lab.cumulative_incidence` or :func:`skycore_lab.compare_arms`
a dask DataFrame (``skycore_lab.read_events(dataset, engine="dask")``) and
the heavy work runs on the cluster of the current ``distributed.Client``:
the events are shuffled by send, :func:`deliveries` runs per partition, and
each partition is folded into sufficient statistics (counts per group; the
latency values with their counts). Only those come back; the statistics are
then computed here, by the same functions the pandas path calls.

* :mod:`.engine` — telling a dask frame, importing dask, folding partitions;
* :mod:`.frames` — deliveries and handset profiles by shuffle;
* :mod:`.cluster` — a local cluster, or a client of an existing one.

Needs the ``[dask]`` extra (``pip install "skycore-lab[dask]"``); without it,
a dask frame raises :class:`skycore_lab.DaskNotInstalledError`.
"""
