"""How a ``clv`` process ends (real processes): the queued work done, the exit handlers run, the streams flushed."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.interpreter import FIRST_GENERATION, fewer_collections
from tests.conftest import REPO, clean_env

ENDING = """
import atexit, concurrent.futures, pathlib, sys, threading, time
from pipeline.interpreter import exit_now

out = pathlib.Path(sys.argv[1])
atexit.register(lambda: (out / "exit-handler").write_text("ran"))
pool = concurrent.futures.ThreadPoolExecutor(1)
pool.submit(time.sleep, 0.3)
pool.submit(lambda: (out / "queued").write_text("done"))  # behind the sleep: still queued at exit_now
worker = threading.Thread(target=lambda: (time.sleep(0.3), (out / "thread").write_text("done")))
worker.start()
sys.stdout.write("no newline at the end")
sys.stderr.write("nor here")
exit_now(int(sys.argv[2]))
"""


@pytest.mark.parametrize("code", [0, 3])
def test_exit_now_ends_as_the_interpreter_would(code: int, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", ENDING, str(tmp_path), str(code)],
        cwd=REPO,
        env=clean_env() | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert done.stdout == "no newline at the end"
    assert done.stderr == "nor here"
    assert (tmp_path / "queued").read_text() == "done"  # an executor's queued work is done
    assert (tmp_path / "thread").read_text() == "done"  # a thread that is not a daemon is waited for
    assert (tmp_path / "exit-handler").read_text() == "ran"


def _ended(script: str, *args: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    """``script`` in a process of its own whose output is buffered, as a command's is when redirected."""
    env = {k: v for k, v in clean_env().items() if k != "PYTHONUNBUFFERED"} | {"PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )


def test_output_that_cannot_be_written_makes_the_exit_code_120() -> None:
    script = "import sys\nfrom pipeline.interpreter import exit_now\nsys.stdout.write('x' * 100)\nexit_now(0)\n"
    read, write = os.pipe()
    os.close(read)  # nobody reads: flushing the buffered output fails (a broken pipe)
    try:
        done = _ended(script, stdout=write)
    finally:
        os.close(write)
    assert done.returncode == 120, done.stderr  # as Python ends when it cannot flush


def test_what_c_libraries_wrote_is_flushed(tmp_path: Path) -> None:
    script = (
        "import ctypes\nfrom pipeline.interpreter import exit_now\n"
        "ctypes.CDLL(None).printf(b'written by C')\nexit_now(0)\n"
    )
    with (tmp_path / "out").open("w") as out:  # a file: the C library buffers its output
        done = _ended(script, stdout=out.fileno())
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out").read_text() == "written by C"


SIGTERM_WHILE_ENDING = """
import os, signal, threading, time
from pipeline.interpreter import exit_now

def refuse(signum, frame):
    raise RuntimeError("the command's handler ran after the command was done")

signal.signal(signal.SIGTERM, refuse)

def kill_once_ending():
    while signal.getsignal(signal.SIGTERM) is refuse:  # until exit_now has given SIGTERM its default action
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)

threading.Thread(target=kill_once_ending).start()
exit_now(0)
"""


def test_a_sigterm_while_the_process_ends_ends_it_at_once() -> None:
    done = _ended(SIGTERM_WHILE_ENDING)
    assert done.returncode == -15, done.stderr
    assert "Traceback" not in done.stderr


def test_fewer_collections_moves_the_first_generation_only() -> None:
    before = gc.get_threshold()
    try:
        fewer_collections()
        assert gc.get_threshold() == (FIRST_GENERATION, before[1], before[2])
    finally:
        gc.set_threshold(*before)
