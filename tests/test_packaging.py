"""The promises about installing: README commands, CI entry, conda environment.

The public API and the package's shape are checked in ``test_layout.py``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```(?:bash|sh|console)\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith("python3 -m venv")]


def test_ci_runs_exactly_the_readme_test_command():
    commands = _readme_commands()
    test_commands = [c for c in commands if "pytest" in c]
    assert len(test_commands) == 1, commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_commands[0] in [line.strip() for line in ci]


def test_readme_demo_command_installs_what_the_demo_writes():
    demo = [c for c in _readme_commands() if c.endswith("skycore-lab demo")]
    assert len(demo) == 1
    # a plain install runs the main job: the demo writes report.xlsx, so openpyxl is a core dependency
    assert re.search(r'pip install (-q )?-e (\.|"\.(\[(all|excel)\])?")( |$)', demo[0]), demo[0]
    assert "openpyxl" in _requirement_names(_pyproject()["project"]["dependencies"])


def test_old_extras_still_install():
    extras = _pyproject()["project"]["optional-dependencies"]
    for name in ("excel", "parquet", "all"):  # `pip install "skycore-lab[excel]"` keeps working
        assert name in extras


def test_numba_is_optional_fast_and_all_and_test_install_it():
    project = _pyproject()["project"]
    assert "numba" not in _requirement_names(project["dependencies"])  # pip install works without a numba wheel
    for extra in ("fast", "all", "test"):
        assert "numba" in _requirement_names(project["optional-dependencies"][extra]), extra


def test_ci_runs_the_parser_tests_again_on_the_pure_path_after_the_readme_command():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    readme = [c for c in _readme_commands() if "pytest" in c][0]
    pure = [i for i, line in enumerate(ci) if line.startswith("SKYCORE_LAB_PURE=1 ") and "pytest" in line]
    assert len(pure) == 1 and pure[0] > ci.index(readme)
    assert "test_postbacks_formats_fast.py" in ci[pure[0]] and "test_postbacks_engines.py" in ci[pure[0]]


def _requirement_names(requirements) -> dict[str, str]:
    names = {}
    for requirement in requirements:
        match = re.match(r"\s*([A-Za-z0-9_.-]+)(\[[^\]]+\])?\s*(.*)", requirement)
        name = match.group(1).lower().replace("_", "-")
        if match.group(2):  # pip extras are separate conda packages: uvicorn[standard] → uvicorn-standard
            name += "-" + match.group(2).strip("[]")
        names[name] = match.group(3).replace(" ", "")
    return names


def test_environment_yml_lists_the_same_runtime_dependencies():
    # plus the "fast" extra (numba): conda-forge always has it, so conda users get the compiled parser
    project = _pyproject()["project"]
    pip_side = _requirement_names([*project["dependencies"], *project["optional-dependencies"]["fast"]])
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    lines = text.split("dependencies:", 1)[1].splitlines()
    conda = [line.strip()[2:] for line in lines if re.match(r"\s+- [A-Za-z]", line) and not line.strip()[2:].startswith("-")]
    conda_side = _requirement_names([c for c in conda if not c.startswith(("python", "pip"))])
    assert conda_side == pip_side
    python = [c for c in conda if c.startswith("python")]
    assert python == [f"python{_pyproject()['project']['requires-python']}"]


@pytest.mark.slow
def test_readme_notebook_example_runs(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "report.html").stat().st_size > 0
    assert len(namespace["result"].deliveries) == 600
