"""The nanny's control protocol, sans-IO: events in, errors and addresses out."""

from __future__ import annotations

import pytest

from kernelkit import KernelDied
from kernelkit.protocol import (
    NANNY_ACTIONS,
    NANNY_DIED,
    NANNY_RESTARTED,
    died_error,
    exit_status_of,
    is_final_death,
)


@pytest.mark.parametrize(
    ("kind", "content", "final"),
    [
        (NANNY_DIED, {"exit_status": -9}, True),
        (NANNY_DIED, {"exit_status": -9, "restarting": False}, True),
        (NANNY_DIED, {"exit_status": -15, "restarting": True}, False),  # a restart follows
        (NANNY_RESTARTED, {"connection": {}}, False),
        ("nanny_reply", {"status": "ok"}, False),
    ],
)
def test_which_events_are_a_death(kind: str, content: dict[str, object], final: bool) -> None:
    assert is_final_death(kind, content) is final


@pytest.mark.parametrize(
    ("content", "code"),
    [({"exit_status": -9}, -9), ({"exit_status": 0}, 0), ({"exit_status": None}, None),
     ({"exit_status": True}, None), ({"exit_status": "9"}, None), ({}, None)],
)  # fmt: skip
def test_exit_status(content: dict[str, object], code: int | None) -> None:
    assert exit_status_of(content) == code


def test_died_error_carries_code_and_tail() -> None:
    err = died_error({"exit_status": -9, "output_tail": ["a", 2]}, kernel_name="python3")
    assert isinstance(err, KernelDied)
    assert err.exit_code == -9
    assert err.output_tail == ("a", "2")
    assert "python3" in str(err)
    assert "nanny" in str(err)
    bare = died_error({})
    assert bare.exit_code is None
    assert bare.output_tail == ()


def test_actions_are_known() -> None:
    assert {"interrupt", "restart", "stop", "subscribe", "output"} <= NANNY_ACTIONS
