"""Result objects of single statistical tests, after lifelines' ``StatisticalResult``.

Each result has the numbers as attributes (``p_value``, ``test_statistic``
...), a ``summary`` DataFrame (one row per comparison), ``print_summary()``
(prints nothing unless called), a plain ``repr`` and an HTML form for
notebooks (``_repr_html_``). Subclasses say what they are in ``_title`` and
``_details``.
"""

from __future__ import annotations

from html import escape

import pandas as pd

__all__ = ["TestResult"]


class TestResult:
    """Base of the result objects: ``summary``, ``print_summary()``, ``_repr_html_()``."""

    __test__ = False  # not a pytest test class, despite the name

    _title: str = "test"

    @property
    def summary(self) -> pd.DataFrame:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _details(self) -> list[tuple[str, str]]:
        """(name, value) lines printed above the summary table."""
        return []

    def print_summary(self, decimals: int = 4) -> None:
        """Print the details and the summary table."""
        print(f"<{type(self).__name__}: {self._title}>")
        for name, value in self._details():
            print(f"{name:>24} = {value}")
        print()
        print(self.summary.to_string(index=False, float_format=lambda v: f"{v:.{decimals}g}"))

    def _repr_html_(self) -> str:
        details = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in self._details())
        table = self.summary.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
        return (f"<div><p><b>{escape(type(self).__name__)}</b>: {escape(self._title)}</p>"
                f"<table>{details}</table>{table}</div>")  # fmt: skip

    def __repr__(self) -> str:
        details = ", ".join(f"{name}={value}" for name, value in self._details())
        return f"<{type(self).__name__}: {details}>"
