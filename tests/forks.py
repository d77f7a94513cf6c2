"""Many ``clv`` commands, cheaply: a server process imports the CLI (and MLflow) once and forks one child per command.

A forked child is a real, separate process: it installs its own SIGTERM handler, opens its own SQLite
connections, and can be killed; only the ~5 s of imports are shared. The server never opens a store, so
no connection crosses a fork. :class:`Forks` is the test side; :func:`serve` the server (``python -m
tests.forks``), which answers one JSON line per request on stdout.

Requests: ``{"argv": [...], ...}`` runs ``clv <argv>``; ``{"call": "module:function", "args": [...]}`` runs a
function in a child and returns its JSON result (used to inspect a store from a process that has no cached
connection to it). Both take ``cwd``, ``env`` (values None unset), ``fault`` ([at, action, trace] for
:func:`pipeline.faults.install`) and ``out`` (file prefix for the child's stdout and stderr).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import REPO, clean_env

__all__ = ["Done", "Forks", "serve"]

WARM = (
    "pipeline.cli",
    "pipeline.commands.train",
    "pipeline.commands.score",
    "pipeline.commands.registry",
    "pipeline.recorder.store",
    "mlflow.pyfunc",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.artifact.local_artifact_repo",
    "lifetimes",
    "tests.store_checks",
)


@dataclass(frozen=True)
class Done:
    """What a child did: its exit code (minus the signal that killed it), its output, and a call's result."""

    returncode: int
    stdout: str
    stderr: str
    result: Any = None


def _child(request: dict[str, Any]) -> int:
    """In the forked child: set up, run the command or call, return the exit code."""
    out = Path(request["out"])
    stdout = open(f"{out}.stdout", "w", encoding="utf-8")  # noqa: SIM115 - this process ends with os._exit
    stderr = open(f"{out}.stderr", "w", encoding="utf-8")  # noqa: SIM115
    os.dup2(stdout.fileno(), 1)
    os.dup2(stderr.fileno(), 2)
    sys.stdout, sys.stderr = stdout, stderr
    os.chdir(request.get("cwd") or os.getcwd())
    for key, value in (request.get("env") or {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    from mlflow.utils import requirements_utils

    from pipeline import faults

    fault = request.get("fault")
    faults.install(faults.FaultPlan(fault[0], fault[1], Path(fault[2]) if fault[2] else None) if fault else None)
    try:
        if "argv" in request:
            from pipeline.cli import main

            # The command runs as in production, where nothing has built MLflow's map of modules to packages
            # (pipeline.recorder.store.versions_checked_without_module_scan); the server built it for the calls.
            requirements_utils._MODULES_TO_PACKAGES = None
            return main(request["argv"])
        module, _, name = request["call"].partition(":")
        result = getattr(importlib.import_module(module), name)(*request.get("args", []))
        Path(f"{out}.json").write_text(json.dumps(result), encoding="utf-8")
        return 0
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()


def serve() -> None:
    """Import everything once, then fork a child per request line on stdin; answer its exit code."""
    for module in WARM:
        importlib.import_module(module)
    from mlflow.utils import requirements_utils

    # MLflow's 2 s scan of installed packages, once, for the calls that load a model with MLflow alone
    # (tests.store_checks, as any consumer of the registry would)
    requirements_utils._init_modules_to_packages_map()  # type: ignore[no-untyped-call]
    reply = sys.stdout
    print(json.dumps({"ready": os.getpid()}), file=reply, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(request)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"returncode": code}), file=reply, flush=True)


class Forks:
    """The test side: one server process; :meth:`clv` and :meth:`call` block until the child has ended."""

    def __init__(self, scratch: Path, env: dict[str, str] | None = None) -> None:
        self.scratch = scratch
        self.count = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.forks"],
            cwd=REPO,
            env=clean_env() | {"MLFLOW_DISABLE_TELEMETRY": "true"} | (env or {}),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert "ready" in self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the fork server ended with {self.process.wait()}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _run(self, request: dict[str, Any]) -> Done:
        self.count += 1
        out = self.scratch / f"child-{self.count}"
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request | {"out": str(out)}) + "\n")
        self.process.stdin.flush()
        code = int(self._answer()["returncode"])
        result_file = Path(f"{out}.json")
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        return Done(code, Path(f"{out}.stdout").read_text(), Path(f"{out}.stderr").read_text(), result)

    def clv(
        self,
        *argv: str,
        cwd: Path,
        env: dict[str, str | None] | None = None,
        fault: tuple[int | None, str, Path | None] | None = None,
    ) -> Done:
        """``clv <argv>`` in a child process; ``fault``: (at, action, trace) for :mod:`pipeline.faults`."""
        plan = [fault[0], fault[1], str(fault[2]) if fault[2] else None] if fault else None
        return self._run({"argv": list(argv), "cwd": str(cwd), "env": env or {}, "fault": plan})

    def call(self, function: str, *args: Any, cwd: Path, env: dict[str, str | None] | None = None) -> Any:
        """``module:function(*args)`` in a child process; its JSON result (the test fails if it raised)."""
        done = self._run({"call": function, "args": list(args), "cwd": str(cwd), "env": env or {}})
        assert done.returncode == 0, done.stderr
        return done.result

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    serve()
