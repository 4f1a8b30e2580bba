"""numba is optional (issue 14): without it the parser runs the pure numpy/RE2 path, same frame.

A fresh interpreter with numba made unimportable (a ``sys.meta_path``
finder that refuses it) imports ``skycore_lab``, reads a receiver log, a
file of documents and a file of form lines with ``read_postbacks``, and
must return the very frame this interpreter reads (with numba, when it is
installed). ``SKYCORE_LAB_PURE=1`` selects the same path with numba present.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote_plus

import pandas as pd
import pytest

from skycore_lab.postbacks import read_postbacks
from skycore_lab.postbacks.logformat import HEADER, encode_record

ROOT = Path(__file__).resolve().parents[1]
BODY = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>%s</CODE>"
    b"<STATUS>Message Sent</STATUS><SENTAS>MMS</SENTAS><TO>+1774319%04d</TO><TRACKINGID>T%d</TRACKINGID>"
    b"<SPID>1100</SPID><TIMESTAMP>2026-03-02T09:%02d:00-05%s</TIMESTAMP><HANDSET> Pixel 8 </HANDSET></POSTBACK>"
)
_BLOCKED = r"""
import sys
class NoNumba:
    def find_spec(self, name, path=None, target=None):
        if name == "numba" or name.startswith("numba."):
            raise ImportError("numba blocked for this test")
sys.meta_path.insert(0, NoNumba())
import skycore_lab
from skycore_lab.postbacks import kernel, read_postbacks
assert "numba" not in sys.modules
print("ENGINE", kernel.ENGINE)
for source, out in zip(sys.argv[1::2], sys.argv[2::2]):
    read_postbacks(source, drop_duplicates=False).to_pickle(out)
"""
_ENGINE = "import skycore_lab.postbacks.kernel as k; print('ENGINE', k.ENGINE)"


def _bodies() -> list[bytes]:
    bodies = [BODY % (b"N101" if i % 3 else b"N102", i, i, i % 60, b":00" if i % 2 else b"") for i in range(300)]
    bodies.insert(7, b"<POSTBACK><CODE>N101</CODE><TRACKINGID>T&amp;1</TRACKINGID></POSTBACK>")  # the general path
    bodies.insert(9, b"<POSTBACK><CODE>N101</CODE>")  # a bad record
    return bodies


def _files(tmp_path: Path) -> list[Path]:
    bodies = _bodies()
    log = tmp_path / "postbacks.log"
    log.write_bytes(HEADER + b"".join(encode_record(b, "-", f"2026-03-02T14:00:{i % 60:02d}.000000Z")
                                      for i, b in enumerate(bodies)))
    documents = tmp_path / "postbacks.xml"
    documents.write_bytes(b"".join(b + b"\n" for b in bodies))
    form = tmp_path / "postbacks.form"
    form.write_bytes(b"".join(b"xml=" + quote_plus(b).encode() + b"\n" for b in bodies))
    return [log, documents, form]


def _run(code: str, *args: str, pure: bool = False) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SKYCORE_LAB_PURE", None)
    if pure:
        env["SKYCORE_LAB_PURE"] = "1"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.filterwarnings("ignore")
def test_without_numba_the_pure_path_reads_the_same_frame(tmp_path):
    files = _files(tmp_path)
    outputs = [tmp_path / f"{path.name}.pickle" for path in files]
    said = _run(_BLOCKED, *[str(x) for pair in zip(files, outputs) for x in pair])
    assert "ENGINE numpy" in said
    for path, output in zip(files, outputs):
        here = read_postbacks(path, drop_duplicates=False)
        there = pd.read_pickle(output)
        assert len(here) == 301  # the bad record is skipped on both
        pd.testing.assert_frame_equal(there, here)


def test_the_environment_variable_forces_the_pure_path():
    assert "ENGINE numpy" in _run(_ENGINE, pure=True)
