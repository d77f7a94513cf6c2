"""SIGTERM handling: an immediate stop, or a deferred one inside a section it must not cut in two."""

from __future__ import annotations

import pytest

from pipeline import stop


@pytest.fixture(autouse=True)
def no_stop_requested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stop, "_state", {"requested": False, "deferred": 0})


def test_sigterm_raises_at_once_outside_a_deferred_section() -> None:
    stop.checkpoint()  # nothing requested: no stop
    with pytest.raises(stop.Terminated, match="terminated by SIGTERM"):
        stop.on_sigterm(15, None)
    assert stop.requested()
    assert stop.Terminated.exit_code == 143


def test_sigterm_inside_a_deferred_section_waits_for_the_next_checkpoint() -> None:
    with stop.deferred(), stop.deferred():  # sections nest
        stop.on_sigterm(15, None)
    assert stop.requested()
    with pytest.raises(stop.Terminated):
        stop.checkpoint()
    with pytest.raises(stop.Terminated):
        stop.on_sigterm(15, None)  # the sections are over: a second signal raises at once
