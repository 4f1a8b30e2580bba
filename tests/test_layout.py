"""The package's shape: no import cycles, no private names across modules, one public API.

The imports are read from the source (``ast``), every ``import`` statement
of every module, at module level or inside a function: a cycle through a
deferred import is still a cycle in the design. ``TYPE_CHECKING`` blocks
are for type checkers only and are left out.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import skycore_lab

PACKAGE = Path(skycore_lab.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(current: str, level: int, target: str | None) -> str:
    """The absolute name of a (relative) import in module ``current``."""
    if level == 0:
        return target or ""
    package = current if _is_package(current) else current.rsplit(".", 1)[0]
    for _ in range(level - 1):
        package = package.rsplit(".", 1)[0]
    return f"{package}.{target}" if target else package


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in ast.walk(node):
                if hasattr(child, "lineno"):
                    lines.add(child.lineno)
    return lines


def _imports(name: str) -> list[tuple[str, str | None, int]]:
    """``(module, imported name or None, line)`` for each skycore_lab import in module ``name``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names if alias.name.startswith("skycore_lab")]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(name, node.level, node.module)
            if not module.startswith("skycore_lab"):
                continue
            for alias in node.names:
                found.append((module, alias.name, node.lineno))
    return found


def _target(module: str, imported: str | None) -> str:
    """The module an import depends on: ``from pkg import sub`` names the submodule."""
    if imported is not None and f"{module}.{imported}" in MODULES:
        return f"{module}.{imported}"
    return module


def _graph() -> dict[str, set[str]]:
    return {name: {_target(m, i) for m, i, _ in _imports(name) if _target(m, i) != name} for name in MODULES}


def test_every_module_of_the_tree_is_found():
    # the walk below must see the real package, not a stale copy
    assert "skycore_lab.postbacks.reader" in MODULES and "skycore_lab.stats.compare" in MODULES
    assert len(MODULES) > 40


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not cycles, "import cycles: " + "; ".join(" → ".join(cycle) for cycle in cycles)


def test_the_cycle_check_sees_deferred_imports():
    # report/htmlpage imports plots inside a function: it must still be an edge
    assert "skycore_lab.plots" in _graph()["skycore_lab.report.htmlpage"]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_module_and_no_private_name_imported_across_modules():
    problems = []
    for name, path in MODULES.items():
        for part in name.split("."):
            if _private(part):
                problems.append(f"{name}: a private module (its name starts with '_')")
        for module, imported, line in _imports(name):
            if any(_private(part) for part in module.split(".")):
                problems.append(f"{path.name}:{line} imports the private module {module}")
            if imported is not None and _private(imported):
                problems.append(f"{path.name}:{line} imports the private name {module}.{imported}")
    assert not problems, "\n".join(problems)


def test_no_private_attribute_of_another_module_is_read():
    # ``module._name`` where ``module`` was imported from skycore_lab
    problems = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and _resolve(name, node.level, node.module).startswith("skycore_lab"):
                module = _resolve(name, node.level, node.module)
                aliases |= {a.asname or a.name for a in node.names if f"{module}.{a.name}" in MODULES}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and _private(node.attr)):
                problems.append(f"{path.name}:{node.lineno} reads {node.value.id}.{node.attr}")
    assert not problems, "\n".join(problems)


def _defined_public_names() -> set[str]:
    """Classes, functions and exceptions a user can call, as defined (not re-exported) in the package."""
    names = set()
    for info in pkgutil.walk_packages(skycore_lab.__path__, "skycore_lab."):
        module = importlib.import_module(info.name)
        for attribute, value in vars(module).items():
            if attribute.startswith("_") or not (inspect.isclass(value) or inspect.isfunction(value)):
                continue
            if getattr(value, "__module__", None) == module.__name__:
                names.add(attribute)
    return names


def test_all_names_resolve_to_objects_defined_in_the_package():
    # httpx's test_exported_members, for a lazily importing package: every
    # name of __all__ resolves, to an object defined inside skycore_lab
    for name in skycore_lab.__all__:
        value = getattr(skycore_lab, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("skycore_lab."), name
    assert "columns" in skycore_lab.__all__ and skycore_lab.columns.TRACKING_ID == "tracking_id"


def test_every_error_and_warning_class_a_user_meets_is_exported():
    defined = _defined_public_names()
    for name in defined:
        value = None
        for module in MODULES:
            candidate = getattr(importlib.import_module(module), name, None)
            if inspect.isclass(candidate):
                value = candidate
                break
        if value is not None and issubclass(value, (skycore_lab.SkycoreError, skycore_lab.SkycoreWarning)):
            assert name in skycore_lab.__all__, f"{name} is raised or warned to users but not exported"


@pytest.mark.parametrize("name", sorted(skycore_lab.__all__))
def test_exported_errors_and_warnings_share_their_roots(name):
    value = getattr(skycore_lab, name)
    if inspect.isclass(value) and issubclass(value, Warning):
        assert issubclass(value, skycore_lab.SkycoreWarning), name
    elif inspect.isclass(value) and issubclass(value, BaseException):
        assert issubclass(value, skycore_lab.SkycoreError), name


def test_the_tree_in_the_package_docstring_is_the_real_tree():
    # every subpackage and module the docstring draws exists, and every one that exists is drawn
    doc = skycore_lab.__doc__
    for name in MODULES:
        if name == "skycore_lab":
            continue
        leaf = name.rsplit(".", 1)[-1]
        shown = f"{leaf}/" if _is_package(name) else f"{leaf}.py"
        assert shown in doc, f"{name} is not drawn in skycore_lab's docstring"
