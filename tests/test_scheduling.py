"""The suite's order and its spread over two workers name modules that exist (a renamed module would
otherwise silently lose its place)."""

from __future__ import annotations

from tests.conftest import REPO
from tests.scheduling import SLOWEST_FIRST, TWO_CORE


def test_every_listed_module_exists() -> None:
    assert [module for module in SLOWEST_FIRST if not (REPO / module).is_file()] == []


def test_the_two_core_modules_come_first() -> None:
    assert SLOWEST_FIRST[: len(TWO_CORE)] == TWO_CORE
    assert len(set(SLOWEST_FIRST)) == len(SLOWEST_FIRST)
