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
"""

from __future__ import annotations

import threading

import pyarrow as pa

__all__ = ["pool"]

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

