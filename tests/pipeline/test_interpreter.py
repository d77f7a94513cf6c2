"""How a ``clv`` process ends (a real process each): the queued work done, the exit handlers run, the streams flushed."""

from __future__ import annotations

import gc
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


def test_fewer_collections_moves_the_first_generation_only() -> None:
    before = gc.get_threshold()
    try:
        fewer_collections()
        assert gc.get_threshold() == (FIRST_GENERATION, before[1], before[2])
    finally:
        gc.set_threshold(*before)
