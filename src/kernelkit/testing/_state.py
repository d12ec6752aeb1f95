"""The fake kernel's running state: its shells, what an execution waits for."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator

from kernelkit.protocol import COMM_MESSAGES, CONTROL_REQUESTS, SHELL_REQUESTS, Message

__all__ = ["Execution", "InputWait", "Running", "Shell", "SleepWait", "expected_channel"]


# Internal state: plain classes, as dataclasses cost the fake kernel process its start time.
class SleepWait:
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class InputWait:
    __slots__ = ("prompt",)

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt


Execution = Generator["SleepWait | InputWait", "str | None", None]


class Running:
    """An execution in progress, and what it waits for."""

    __slots__ = ("execution", "identities", "input_id", "request", "token")

    def __init__(
        self, execution: Execution, request: Message, identities: tuple[bytes, ...]
    ) -> None:
        self.execution = execution
        self.request = request
        self.identities = identities
        self.token = 0  # of the Sleep being waited on
        self.input_id = ""  # msg_id of the input_request being waited on


class Shell:
    """The main shell or a subshell: one request at a time, the others queued."""

    __slots__ = ("queue", "running")

    def __init__(self) -> None:
        self.queue: deque[tuple[Message, tuple[bytes, ...]]] = deque()
        self.running: Running | None = None


def expected_channel(msg_type: str) -> str | None:
    if msg_type == "kernel_info_request":
        return "shell or control"
    if msg_type in SHELL_REQUESTS or msg_type in COMM_MESSAGES:
        return "shell"
    if msg_type in CONTROL_REQUESTS:
        return "control"
    if msg_type == "input_reply":
        return "stdin"
    return None
