"""How `make test` spreads the suite over the machine's two cores (``pytest -n 2``, pytest-xdist).

Most tests use one core; a few run two processes of their own (a Spark cluster with two workers, the kill-point
test's two fork workers). The two-core modules go to one worker as one unit, one after the other, so that they
never run beside each other; the other worker meanwhile runs the one-core modules. Each module stays whole on
one worker (its module fixtures are built once), and the slowest modules are handed out first, so that no long
module starts last (longest-first scheduling). Without ``-n`` the suite runs serially in the same order.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = [
    "SLOWEST_FIRST",
    "TWO_CORE",
    "pytest_collection_modifyitems",
    "pytest_xdist_make_scheduler",
    "work_unit",
]

TWO_CORE = ("tests/pipeline/test_spark_cluster.py", "tests/pipeline/test_run_kill_points.py")
"""Modules that keep both cores busy on their own: one work unit, run on one worker."""

SLOWEST_FIRST = (
    *TWO_CORE,
    "tests/pipeline/test_run_failures.py",
    "tests/pipeline/test_real_feeds.py",
    "tests/notebooks/test_notebooks.py",
    "tests/pipeline/test_run_bad_input.py",
    "tests/pipeline/engines/test_spark_prepare.py",
    "tests/pipeline/test_run.py",
    "tests/pipeline/test_run_model_selection.py",
    "tests/pipeline/contractual/test_command.py",
    "tests/pipeline/test_cli.py",
    "tests/pipeline/commands/test_whatif.py",
    "tests/pipeline/test_refusals.py",
    "tests/pipeline/commands/test_monitor.py",
    "tests/pipeline/test_secrets_scan.py",
    "tests/pipeline/test_blend_serving.py",
)
"""The slowest modules of a serial run, slowest first (per-module totals of a serial run's JUnit report: the
two-core modules 735 s and 633 s, test_run_failures 486 s, ... test_blend_serving 97 s); every other module
follows in collection order."""


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its module, or one unit for all the two-core modules."""
    module = _module(nodeid)
    return "two-core modules" if module in TWO_CORE else module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest modules first, each module's tests in their own order (a stable sort)."""
    rank = {module: number for number, module in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(_module(item.nodeid), len(SLOWEST_FIRST)))


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work units of one module each, the two-core modules together in one; handed out in collection order."""
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class ByModule(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:  # xdist's grouping of tests into units (3.8.0, pinned)
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the order above, not the largest module first
    return ByModule(config, log)
