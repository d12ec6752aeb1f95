"""Message types per channel, and request/reply naming."""

from __future__ import annotations

import pytest

from kernelkit import LocalProtocolError
from kernelkit.protocol import (
    CONTROL_REQUESTS,
    IOPUB_MESSAGES,
    SHELL_REQUESTS,
    STDIN_MESSAGES,
    is_reply,
    is_request,
    reply_type,
    request_channel,
    request_type,
)


@pytest.mark.parametrize(
    ("req", "reply"),
    [
        ("execute_request", "execute_reply"),
        ("kernel_info_request", "kernel_info_reply"),
        ("create_subshell_request", "create_subshell_reply"),
        ("input_request", "input_reply"),
        ("my_custom_request", "my_custom_reply"),
    ],
)
def test_reply_and_request_types(req: str, reply: str) -> None:
    assert reply_type(req) == reply
    assert request_type(reply) == req
    assert is_request(req)
    assert not is_request(reply)
    assert is_reply(reply)
    assert not is_reply(req)


@pytest.mark.parametrize("bad", ["status", "_request", "", "execute_reply", "request"])
def test_reply_type_rejects_non_requests(bad: str) -> None:
    with pytest.raises(LocalProtocolError, match="not a request type"):
        reply_type(bad)


@pytest.mark.parametrize("bad", ["status", "_reply", "", "execute_request"])
def test_request_type_rejects_non_replies(bad: str) -> None:
    with pytest.raises(LocalProtocolError, match="not a reply type"):
        request_type(bad)


@pytest.mark.parametrize(
    ("msg_type", "channel"),
    [
        ("execute_request", "shell"),
        ("kernel_info_request", "shell"),
        ("comm_msg", "shell"),
        ("shutdown_request", "control"),
        ("interrupt_request", "control"),
        ("debug_request", "control"),
        ("create_subshell_request", "control"),
        ("input_reply", "stdin"),
        ("some_extension_request", "shell"),
    ],
)
def test_request_channel(msg_type: str, channel: str) -> None:
    assert request_channel(msg_type) == channel


@pytest.mark.parametrize("msg_type", ["status", "stream", "input_request", "execute_result"])
def test_kernel_messages_have_no_client_channel(msg_type: str) -> None:
    with pytest.raises(LocalProtocolError, match="sent by kernels"):
        request_channel(msg_type)


def test_sets_are_consistent() -> None:
    assert all(t.endswith("_request") for t in SHELL_REQUESTS | CONTROL_REQUESTS)
    assert "kernel_info_request" in SHELL_REQUESTS & CONTROL_REQUESTS
    assert {"status", "stream", "iopub_welcome", "comm_open"} <= IOPUB_MESSAGES
    assert {"input_request", "input_reply"} == STDIN_MESSAGES
