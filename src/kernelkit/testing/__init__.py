"""A strict fake kernel, for kernelkit's tests and for tools built on kernelkit.

It answers as ipykernel does (busy, ``execute_input``, outputs, reply, idle), serves every
request of the messaging protocol and JEP 91 subshells, and is *strict*: a request on the
wrong channel (``execute_request`` on control, ``shutdown_request`` on shell, ...), a
message type no client sends, a bad signature or an ``input_reply`` nobody asked for is
never answered and is recorded as a :class:`ProtocolViolation`. The fake kernel fails
the test that caused it.

Three ways to run it:

- :class:`FakeKernel`, in memory over a :class:`~kernelkit.transport.MemoryTransport`,
  for async tests of client code::

      transport = MemoryTransport()
      async with AsyncKernelClient(transport) as client, FakeKernel(transport) as kernel:
          reply = await client.execute("print hello; result 42")
      # leaving the block raises AssertionError if the client broke the protocol

- a process over ZeroMQ, ``python -m kernelkit.testing CONNECTION_FILE [options]``
  (:func:`fake_kernel_spec` gives a :class:`~kernelkit.specs.KernelSpec` for it), for
  manager and end-to-end tests. It binds the five sockets (ports of 0 in the file are
  chosen and written back, as ipykernel does; given ports are bound), echoes heartbeats,
  signs with the file's key, and starts in well under ipykernel's time. A SIGINT
  interrupts ``sleep`` and ``input``. Protocol violations are written to stderr as they
  happen, and a kernel that saw any exits with code 70 on shutdown. Options:
  ``--say TEXT`` (print at start), ``--exit-at-start CODE`` (print a line to stdout and
  stderr, exit before binding), ``--start-delay S``, ``--start-when FIFO`` (bind once a
  writer opens the named pipe), ``--die-after S`` (exit 7 after S
  seconds), ``--mute`` (bind, write back, answer nothing, not even heartbeats),
  ``--ignore-term``, ``--ignore-shutdown`` (answer shutdown_request, keep running),
  ``--no-interrupt``, ``--features LIST`` (comma-separated ``supported_features``;
  default ``kernel subshells``), ``--no-welcome``, ``--protocol-version V``.
- :class:`KernelCore`, the sans-IO core both drivers use: a received message in, the
  :class:`Send`/:class:`Sleep`/:class:`Exit` actions out.

The code it runs: commands, one per line or joined by ``"; "``, run in order until the
first error:

==================  ===================================================================
``print TEXT``      a stdout stream ``TEXT\\n`` (``err TEXT``: stderr)
``result TEXT``     an ``execute_result`` (text/plain TEXT); ``display TEXT``: display_data
``error NAME [V]``  an ``error`` output and an error reply (ename NAME, evalue V or
                    ``boom``; traceback: a coloured header line, then ``NAME: V``)
``input PROMPT``    an ``input_request`` on stdin; the answer comes back as a stdout
                    stream of exactly that value (an error if ``allow_stdin`` is false)
``sleep S``         busy for S seconds (other shells and control keep answering); an
                    interrupt ends it with a ``KeyboardInterrupt`` error
``exit [CODE]``     the kernel exits at once, answering nothing
``pid``             an ``execute_result`` with the kernel's process id
``hold``            (first) no answer at all, not even a status; the shell stays free
                    (the code goes into the history, so another client can see it came)
``idle-first``      the idle status goes out before the reply
``check``           an error reply (``ProtocolViolation``) if violations were recorded
==================  ===================================================================

Any other code is an expression: its ``execute_result`` is the code itself (``6*7``
gives ``6*7``; empty code gives only the reply). After an error reply, executes already
queued on that shell are answered ``aborted`` (``stop_on_error``). ``complete`` and
``inspect`` know the command words, ``history`` returns the codes run, ``is_complete``
says ``incomplete`` for a trailing backslash. A ``comm_open`` for target ``echo`` opens a
comm that echoes every ``comm_msg``; other targets are closed at once.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from kernelkit.testing._code import COMMANDS
    from kernelkit.testing._core import (
        DEFAULT_FEATURES,
        Action,
        Exit,
        KernelCore,
        ProtocolViolation,
        Send,
        Sleep,
    )
    from kernelkit.testing._memory import FakeKernel
    from kernelkit.testing._spec import fake_kernel_argv, fake_kernel_spec

__all__ = [
    "COMMANDS",
    "DEFAULT_FEATURES",
    "Action",
    "Exit",
    "FakeKernel",
    "KernelCore",
    "ProtocolViolation",
    "Send",
    "Sleep",
    "fake_kernel_argv",
    "fake_kernel_spec",
]

# Loaded on first use: the fake kernel process (`python -m kernelkit.testing`) imports
# this package first and must not pay for asyncio or the kernelspec code.
_LAZY: dict[str, str] = {
    "COMMANDS": "kernelkit.testing._code",
    "DEFAULT_FEATURES": "kernelkit.testing._core",
    "Action": "kernelkit.testing._core",
    "Exit": "kernelkit.testing._core",
    "FakeKernel": "kernelkit.testing._memory",
    "KernelCore": "kernelkit.testing._core",
    "ProtocolViolation": "kernelkit.testing._core",
    "Send": "kernelkit.testing._core",
    "Sleep": "kernelkit.testing._core",
    "fake_kernel_argv": "kernelkit.testing._spec",
    "fake_kernel_spec": "kernelkit.testing._spec",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kernelkit.testing' has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=(name,)), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
