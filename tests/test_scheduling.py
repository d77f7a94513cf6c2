"""The suite's order and its spread over two workers: the two-core modules share one unit of work, every
other module is its own, the slowest modules come first in their listed order, and every listed module
exists (a renamed module would otherwise silently lose its place)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.conftest import REPO
from tests.scheduling import SLOWEST_FIRST, TWO_CORE, pytest_collection_modifyitems, work_unit


@dataclass
class _Item:
    nodeid: str


def test_every_listed_module_exists() -> None:
    assert [module for module in SLOWEST_FIRST if not (REPO / module).is_file()] == []
    assert len(set(SLOWEST_FIRST)) == len(SLOWEST_FIRST)


def test_the_two_core_modules_are_one_unit_and_the_others_their_own() -> None:
    cluster, kill_points = TWO_CORE
    assert work_unit(f"{cluster}::test_a") == work_unit(f"{kill_points}::test_b[sigkill]") == "two-core modules"
    assert work_unit("tests/pipeline/test_gate.py::test_x[1]") == "tests/pipeline/test_gate.py"
    assert work_unit("tests/pipeline/test_gate.py::test_y") == work_unit("tests/pipeline/test_gate.py::test_x[1]")
    assert work_unit("tests/test_layout.py::test_z") != work_unit("tests/pipeline/test_gate.py::test_y")


def test_the_slowest_modules_come_first_each_in_its_own_order() -> None:
    nodeids = [
        "tests/models/test_bgbb.py::test_1",
        f"{SLOWEST_FIRST[2]}::test_b",
        "tests/models/test_bgbb.py::test_2",
        f"{TWO_CORE[1]}::test_kill[sigkill]",
        f"{SLOWEST_FIRST[2]}::test_a",
        f"{TWO_CORE[0]}::test_cluster",
        f"{TWO_CORE[1]}::test_kill[sigterm]",
    ]
    items = [_Item(nodeid) for nodeid in nodeids]
    pytest_collection_modifyitems(items)  # type: ignore[arg-type]  # only nodeid is read
    assert [item.nodeid for item in items] == [
        f"{TWO_CORE[0]}::test_cluster",
        f"{TWO_CORE[1]}::test_kill[sigkill]",
        f"{TWO_CORE[1]}::test_kill[sigterm]",
        f"{SLOWEST_FIRST[2]}::test_b",
        f"{SLOWEST_FIRST[2]}::test_a",
        "tests/models/test_bgbb.py::test_1",
        "tests/models/test_bgbb.py::test_2",
    ]
