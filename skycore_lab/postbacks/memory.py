"""Where the parser's Arrow memory comes from: a pool that gives freed pages back at once.

A parse frees most of what it allocates (each buffer's texts once they are
columns, each column once it is in the frame) while it allocates the next
thing, of another size. Arrow's default pool (mimalloc) keeps freed pages
for reuse, which the assembly hardly reuses, so the process's peak memory
grows to about three times the frame; with Arrow's jemalloc pool set to give
pages back at once (decay 0) it stays below twice the frame
(``benchmarks/bench_parser.py --pools`` prints the three pools side by side,
figures in ``benchmarks/README.md``).

Scope, decided so that nothing outside the parser changes:

* the parser passes :data:`POOL` to the Arrow calls that hold its data
  (``memory_pool=``); the process's default pool is never swapped, so
  other threads and libraries keep allocating where they did;
* the decay is a setting of Arrow's jemalloc arenas, which only the parser
  uses while the default pool is another one; it is set once, before the
  first parse creates them (jemalloc applies it to new arenas only, so it
  cannot be "restored" afterwards, and need not: no one else allocates
  there);
* when the process's default pool already *is* jemalloc (the user chose it,
  ``ARROW_DEFAULT_MEMORY_POOL=jemalloc``), the parser uses it as it is and
  leaves its decay alone: that setting is the user's.

The numpy temporaries of a parse come from glibc's malloc, in the arenas of
the worker threads. What is freed there is reused only by threads that get
those arenas again; after a read nothing does, and glibc keeps it resident
(about half the frame). :func:`release_free_heap` gives those free pages
back once the read is over (``malloc_trim(0)``, as Dask's documentation
advises for a worker's "unmanaged memory"); it changes no setting.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["pool", "take_rows", "release_free_heap"]

_lock = threading.Lock()
_pool: pa.MemoryPool | None = None


def _choose() -> pa.MemoryPool:
    default = pa.default_memory_pool()
    if default.backend_name == "jemalloc" or "jemalloc" not in pa.supported_memory_backends():
        return default
    pa.jemalloc_set_decay_ms(0)  # before the pool's first allocation creates its arenas
    return pa.jemalloc_memory_pool()


def pool() -> pa.MemoryPool:
    """The pool the parser allocates from (chosen on first use; see the module docstring)."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = _choose()
    return _pool


_trim = None  # glibc's malloc_trim, False where there is none (musl, macOS, Windows)


def release_free_heap() -> None:
    """Give the C heap's free pages back to the system (glibc only; elsewhere nothing happens).

    Called at a quiescent point, when a read's threads are done: glibc walks
    every arena (a few ms after a million-record read). Live allocations are
    untouched; only pages no block uses are returned. Called at the end of
    :func:`read_postbacks <skycore_lab.read_postbacks>` (of 100,000 rows or
    more: what a smaller read leaves is a few MB), it lowered the peak of
    read, then ``deliveries``, then ``handset_profiles`` on 1M records by
    0.25-0.3x the events frame (``benchmarks/bench_frames.py``), at no
    measurable cost in time.
    """
    global _trim
    if _trim is None:
        try:
            # the process's own symbols (libc among them): no search for the library, which on
            # Linux runs ldconfig in a subprocess
            _trim = ctypes.CDLL(None).malloc_trim
            _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError, TypeError):  # no symbols to open (Windows), or no malloc_trim
            _trim = False
    if _trim:
        _trim(0)


def take_rows(values: pa.ChunkedArray, rows: np.ndarray) -> pa.ChunkedArray:
    """``values[rows]`` (distinct row numbers), taken chunk by chunk into the parser's pool.

    Arrow's ``take`` on a chunked string column first concatenates every
    chunk into one copy, then takes from it: two copies of the column, whose
    pages are all faulted in anew, where one is needed. Here each run of
    rows from one chunk is taken from that chunk (a chunk kept whole, in
    order, is kept as it is). Rows that jump between chunks more often than
    four times per chunk (a shuffle rather than an arrival-order fix) go
    through Arrow's ``take``, whose per-call cost would otherwise dominate.
    """
    memory = pool()
    count = values.num_chunks
    if count <= 1 or not len(rows):
        return pc.take(values, pa.array(rows, pa.int64()), memory_pool=memory)
    lengths = np.fromiter((len(chunk) for chunk in values.chunks), np.int64, count)
    starts = np.zeros(count + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    ascending = bool(np.all(rows[1:] > rows[:-1]))
    if ascending:  # the usual case (only retries dropped): where each chunk's rows begin
        cuts = np.searchsorted(rows, starts)
        runs = [(chunk, cuts[chunk], cuts[chunk + 1]) for chunk in range(count) if cuts[chunk + 1] > cuts[chunk]]
    else:
        owner = np.searchsorted(starts, rows, side="right") - 1
        breaks = np.flatnonzero(owner[1:] != owner[:-1]) + 1
        if len(breaks) + 1 > 4 * count:
            return pc.take(values, pa.array(rows, pa.int64()), memory_pool=memory)
        edges = np.concatenate(([0], breaks, [len(rows)]))
        runs = [(int(owner[begin]), begin, end) for begin, end in zip(edges[:-1], edges[1:])]
    pieces = []
    for chunk, begin, end in runs:
        if ascending and end - begin == lengths[chunk]:
            pieces.append(values.chunk(chunk))  # every row of the chunk, in order: nothing to copy
        else:
            local = pa.array(rows[begin:end] - starts[chunk], pa.int64())
            pieces.append(pc.take(values.chunk(chunk), local, memory_pool=memory))
    return pa.chunked_array(pieces, type=values.type)
