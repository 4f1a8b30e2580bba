"""Guarded imports of optional dependencies, with an error that says what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .exceptions import MissingDependencyError

__all__ = ["require"]


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import and return ``module``, or raise :class:`MissingDependencyError` naming the extra.

    Parameters
    ----------
    module : str
        Importable name, e.g. ``"openpyxl"``.
    extra : str
        The skycore-lab extra that installs it, e.g. ``"excel"``.
    purpose : str
        What needs it, in words (``"writing .xlsx reports"``).

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingDependencyError
        (an ImportError) When ``module`` cannot be imported. The message names the package and
        the command that installs it; the original error is chained.

    Examples
    --------
    >>> openpyxl = require("openpyxl", "excel", "writing .xlsx reports")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the optional package {module!r}, which is not installed: "
            f"pip install 'skycore-lab[{extra}]'",
            name=module,
        ) from exc
