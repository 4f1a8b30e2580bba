"""The example notebooks: committed without outputs, and each runs top to bottom on a fresh kernel.

Execution uses nbclient with the ``python3`` kernelspec of this venv. Each
notebook runs in a temporary copy of ``notebooks/`` beside a copy of
``data/`` (so ``../data/...`` resolves), and writes its files to
``$SKYCORE_NOTEBOOK_OUT`` (a temporary folder): nothing is written into the
repository.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sys

import nbformat
import pytest
from browser_support import DATA, NOTEBOOKS, ensure_venv_kernelspec, jupyter_env
from jupyter_client import KernelManager
from nbclient import NotebookClient

from skycore_lab import columns as col

EXPECTED = ("01_quickstart.ipynb", "02_ddm_timeout_ab_test.ipynb", "03_report_from_logs.ipynb")
ALL_NOTEBOOKS = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
CELL_TIMEOUT_S = 180
SAMPLE_FILES = ("sample_postbacks.log", "sample_manifest.csv")
NEEDS_SAMPLE = ("03_report_from_logs.ipynb",)


# --- committed form -------------------------------------------------------------------------
def test_the_three_example_notebooks_exist():
    assert set(EXPECTED) <= set(ALL_NOTEBOOKS)


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert "widgets" not in nb.metadata, "saved widget state: clear it (Edit → Clear Outputs of All Cells)"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name} cell {index} has outputs"
            assert cell.execution_count is None, f"{name} cell {index} has an execution count"


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_notebook_cells_never_hold_an_api_key(name):
    source = "\n".join("".join(cell.source) for cell in nbformat.read(NOTEBOOKS / name, as_version=4).cells)
    # A key is only ever read from the environment or a sandbox: never typed into a cell.
    assert not re.search(r"api_key\s*=\s*['\"]", source)
    assert not re.search(r"SkycoreClient\(\s*['\"]", source)


# --- execution ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A temporary copy of notebooks/ and data/, and an output folder."""
    root = tmp_path_factory.mktemp("notebooks-run")
    shutil.copytree(NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(DATA, root / "data")
    (root / "out").mkdir()
    return root


@pytest.fixture(scope="module")
def kernel_env(workspace):
    """Environment of the kernels: this venv's kernelspec first, outputs into the workspace.

    MPLBACKEND is set explicitly: an ambient ``Agg`` would stop figures from showing.
    """
    ensure_venv_kernelspec()
    return jupyter_env(SKYCORE_NOTEBOOK_OUT=str(workspace / "out"), MPLBACKEND="module://matplotlib_inline.backend_inline")


def test_python3_kernel_is_this_venvs_interpreter(monkeypatch):
    ensure_venv_kernelspec()
    monkeypatch.setenv("JUPYTER_PATH", jupyter_env()["JUPYTER_PATH"])
    command = KernelManager(kernel_name="python3").format_kernel_cmd()
    # Not resolved through symlinks: a venv's python links to its base interpreter, which lacks our packages.
    assert os.path.abspath(command[0]) == os.path.abspath(sys.executable), command


@pytest.fixture(scope="module")
def run_notebook(workspace, kernel_env):
    """Execute a notebook (once per module) in the workspace; return the executed notebook."""
    _executed: dict[str, nbformat.NotebookNode] = {}

    def run(name: str) -> nbformat.NotebookNode:
        if name not in _executed:
            missing = [file for file in SAMPLE_FILES if not (DATA / file).exists()]
            if name in NEEDS_SAMPLE and missing:
                pytest.fail(f"{name} reads data/{', data/'.join(missing)}: run `.venv/bin/python data/regenerate.py`")
            path = workspace / "notebooks" / name
            nb = nbformat.read(path, as_version=4)
            manager = KernelManager(kernel_name="python3")
            client = NotebookClient(
                nb, km=manager, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            )  # fmt: skip
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("JUPYTER_PATH", kernel_env["JUPYTER_PATH"])  # kernelspec lookup: this venv's first
                client.execute(env=kernel_env)  # raises CellExecutionError on the first failing cell
            _executed[name] = nb
        return _executed[name]

    return run


def _outputs(nb, kind: str | None = None) -> list:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
            if kind is None or o.output_type == kind]  # fmt: skip


def _text(nb) -> str:
    parts = []
    for output in _outputs(nb):
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def _assert_quiet(nb, name: str) -> None:
    errors = _outputs(nb, "error")
    assert not errors, f"{name}: {errors}"
    stderr = [o.text for o in _outputs(nb, "stream") if o.name == "stderr"]
    assert not stderr, f"{name} wrote to stderr (warnings?): {stderr}"


def _sandbox_key(nb) -> str:
    """The API key of the sandbox the notebook starts (derived from its seed, as the sandbox does)."""
    from skycore_lab.sandbox.account import make_account

    source = "\n".join("".join(cell.source) for cell in nb.cells)
    seeds = set(re.findall(r"Sandbox\(seed=(\d+)", source))
    assert len(seeds) == 1, f"expected one Sandbox(seed=...) in the notebook, found {seeds}"
    key = make_account(int(seeds.pop())).api_key
    assert len(key) >= 12
    return key


@pytest.mark.slow
def test_quickstart_sends_with_the_widget_and_never_shows_the_key(run_notebook, workspace):
    nb = run_notebook("01_quickstart.ipynb")
    _assert_quiet(nb, "01")
    text = _text(nb)
    tracking_ids = set(re.findall(r"TU1TX[A-Za-z0-9+/=]+", text))
    assert tracking_ids, "no tracking id in the outputs"
    for tracking_id in tracking_ids:
        assert base64.b64decode(tracking_id).startswith(b"MMS_")
    assert "Success" in text and "postbacks stored" in text
    assert "Dry run, nothing sent: 1 request(s) to a sandbox" in text and "<ACTION>sendSavedMMS</ACTION>" in text
    assert re.search(r"delivered in \d+ s", text), "the form's row did not follow its message to delivery"
    # The widget's state is saved into the executed notebook: the result shows the tracking id.
    state = json.dumps(nb.metadata.get("widgets", {}))
    assert any(tracking_id in state for tracking_id in tracking_ids)
    everything = nbformat.writes(nb)
    key = _sandbox_key(nb)
    assert key not in everything, "the sandbox's API key leaked into the executed notebook"
    assert (workspace / "out" / "quickstart_postbacks.log").exists()


@pytest.mark.slow
def test_ab_test_notebook_plans_runs_and_decides(run_notebook, workspace):
    nb = run_notebook("02_ddm_timeout_ab_test.ipynb")
    _assert_quiet(nb, "02")
    text = _text(nb)
    assert "sends per arm detect" in text
    assert "DDM experiment: 1,500 sends in 3 arms; control arm 'no_ddm'" in text
    assert "Primary metric: delivery rate" in text and "Sample: detecting" in text  # the summary's verdict parts
    assert re.search(r"'sent': 1500", text), "the dashboard's last refresh counted every send"
    assert ("delivers" in text) and ("control" in text)  # the decision cell printed its verdict
    assert len([o for o in _outputs(nb, "display_data") if "image/png" in o.data]) >= 1
    assert _sandbox_key(nb) not in nbformat.writes(nb)
    assert "Dry run, nothing sent: 1,500 request(s) to a sandbox" in text  # looked before sending
    # the report of the result opens with its decision; the platform's report agrees with the postbacks
    report = (workspace / "out" / "ab_test_report.html").read_text(encoding="utf-8")
    assert report.index('id="verdict"') < report.index("<h2>Summary</h2>")
    assert "Reconciliation of 1,500 send(s)" in text and "Every send agrees." in text


@pytest.mark.slow
def test_report_notebook_reads_the_sample_and_exports(run_notebook, workspace):
    nb = run_notebook("03_report_from_logs.ipynb")
    _assert_quiet(nb, "03")
    text = _text(nb)
    assert "notifications" in text and col.OUTCOME_DELIVERED in text
    figures = [o for o in _outputs(nb, "display_data") if "image/png" in o.data]
    assert len(figures) == 2
    html, xlsx = workspace / "out" / "report.html", workspace / "out" / "report.xlsx"
    assert html.stat().st_size > 10_000 and xlsx.stat().st_size > 5_000
    assert html.read_text(encoding="utf-8").count("data:image/png;base64,") == 4


@pytest.mark.slow
def test_notebooks_write_nothing_beside_themselves(run_notebook, workspace):
    for name in EXPECTED:
        run_notebook(name)
    left = sorted(p.name for p in (workspace / "notebooks").iterdir())
    assert left == ALL_NOTEBOOKS, "a notebook wrote files next to itself instead of into OUT"
    assert sorted(p.name for p in (workspace / "data").iterdir()) == sorted(p.name for p in DATA.iterdir())
