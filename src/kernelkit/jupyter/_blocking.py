"""The blocking faces: jupyter_client's ``KernelManager`` on kernelkit
(:class:`KernelManager`) and its client (:class:`BridgeClient`).

Each :class:`KernelManager` owns one :class:`kernelkit.LoopThread` and drives a
:class:`kernelkit.jupyter.AsyncKernelManager` on it; its clients use the same thread.
Nothing is decided here: every call is the async face's, run on that thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jupyter_client.kernelspec import KernelSpec as JupyterKernelSpec
from jupyter_client.manager import KernelManager as JupyterKernelManager
from traitlets import Bool

from kernelkit import KernelError, LoopThread, ManagerError
from kernelkit.jupyter._client import AsyncBridgeClient, ReplyChannel, StreamChannel
from kernelkit.jupyter._manager import AsyncKernelManager

__all__ = ["BridgeClient", "KernelManager"]


class _Channel:
    """A channel of the async face, read from another thread."""

    def __init__(self, thread: LoopThread, channel: ReplyChannel | StreamChannel) -> None:
        self._thread = thread
        self._channel = channel

    def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        """The next message.

        Raises:
            queue.Empty: none within ``timeout`` seconds.
            DeadKernelError: (shell) the kernel died; the message says why.
        """
        return self._thread.run(self._channel.get_msg(timeout))

    def is_alive(self) -> bool:
        return self._channel.is_alive()


class BridgeClient:
    """jupyter_client's ``BlockingKernelClient`` API (the part tools use) over an
    :class:`~kernelkit.jupyter.AsyncBridgeClient` run on its manager's loop thread."""

    def __init__(self, client: AsyncBridgeClient, thread: LoopThread) -> None:
        self._client = client
        self._thread = thread
        self.session = client.session
        self.shell_channel = _Channel(thread, client.shell_channel)
        self.control_channel = _Channel(thread, client.control_channel)

    @property
    def allow_stdin(self) -> bool:
        return self._client.allow_stdin

    @allow_stdin.setter
    def allow_stdin(self, value: bool) -> None:
        self._client.allow_stdin = value

    @property
    def iopub_channel(self) -> _Channel:
        return _Channel(self._thread, self._client.iopub_channel)

    @property
    def stdin_channel(self) -> _Channel:
        return _Channel(self._thread, self._client.stdin_channel)

    def start_channels(self, *args: Any, **kwargs: Any) -> None:
        self._thread.run(self._client.start_channels())

    def stop_channels(self) -> None:
        self._thread.run(self._client.stop_channels())

    def wait_for_ready(self, timeout: float | None = None) -> None:
        """Raises RuntimeError (as jupyter_client does) when the kernel is not ready."""
        self._thread.run(self._client.wait_for_ready(timeout))

    def is_alive(self) -> bool:
        return self._thread.run(self._client.is_alive())

    def execute(self, code: str, **kwargs: Any) -> str:
        return self._thread.call(lambda: self._client.execute(code, **kwargs))

    def kernel_info(self) -> str:
        return self._thread.call(self._client.kernel_info)

    def complete(self, code: str, cursor_pos: int | None = None) -> str:
        return self._thread.call(self._client.complete, code, cursor_pos)

    def inspect(self, code: str, cursor_pos: int | None = None, detail_level: int = 0) -> str:
        return self._thread.call(self._client.inspect, code, cursor_pos, detail_level)

    def is_complete(self, code: str) -> str:
        return self._thread.call(self._client.is_complete, code)

    def shutdown(self, restart: bool = False) -> str:
        return self._thread.call(self._client.shutdown, restart)

    def input(self, string: str) -> None:
        self._thread.call(self._client.input, string)

    def get_shell_msg(self, timeout: float | None = None) -> dict[str, Any]:
        return self.shell_channel.get_msg(timeout)

    def get_iopub_msg(self, timeout: float | None = None) -> dict[str, Any]:
        return self.iopub_channel.get_msg(timeout)


class KernelManager(JupyterKernelManager):
    """jupyter_client's blocking ``KernelManager`` whose kernel kernelkit launches and
    talks to (see :class:`kernelkit.jupyter.AsyncKernelManager`); ``client()`` returns a
    :class:`BridgeClient`. Call :meth:`close` (or shut the kernel down) to stop its
    loop thread."""

    autorestart = Bool(
        False, config=True, help="Restart the kernel when it dies (kernelkit's restarter)."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._thread = LoopThread(
            "kernelkit-jupyter", owner="kernelkit.jupyter.KernelManager", error=ManagerError
        )
        self._inner: AsyncKernelManager | None = None

    def _async(self) -> AsyncKernelManager:
        if self._inner is None or (
            self._inner.kernel_name != self.kernel_name and not self._inner.has_kernel
        ):
            self._inner = AsyncKernelManager(
                kernel_name=self.kernel_name,
                kernel_id=self.kernel_id,
                autorestart=self.autorestart,
                parent=self,
            )
        return self._inner

    @property
    def kernelkit_manager(self) -> AsyncKernelManager:
        """The async face underneath."""
        return self._async()

    @property
    def kernel_spec(self) -> JupyterKernelSpec | None:
        spec: JupyterKernelSpec | None = self._async().kernel_spec
        return spec

    @property
    def ipykernel(self) -> bool:
        return bool(self._async().ipykernel)

    @property
    def has_kernel(self) -> bool:
        return self._inner is not None and bool(self._inner.has_kernel)

    @property
    def last_error(self) -> KernelError | None:
        return self._inner.last_error if self._inner is not None else None

    def start_restarter(self) -> None:
        """kernelkit's manager restarts the kernel itself (``autorestart``)."""

    def stop_restarter(self) -> None:
        """kernelkit's manager restarts the kernel itself (``autorestart``)."""

    def _follow(self) -> None:
        inner = self._async()
        for name in ("transport", "ip", "shell_port", "iopub_port", "stdin_port", "control_port",
                     "hb_port", "connection_file"):  # fmt: skip
            setattr(self, name, getattr(inner, name))
        self.session.key = inner.session.key

    def start_kernel(
        self,
        *,
        extra_arguments: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        **kw: Any,
    ) -> None:
        inner = self._async()
        self._thread.run(inner.start_kernel(extra_arguments=extra_arguments, env=env, cwd=cwd))
        self._follow()

    def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        if self._inner is not None:
            self._thread.run(self._inner.shutdown_kernel(now=now, restart=restart))

    def restart_kernel(self, now: bool = False, newports: bool = False, **kw: Any) -> None:
        self._thread.run(self._async().restart_kernel(now=now))
        self._follow()

    def cleanup_resources(self, restart: bool = False) -> None:
        if self._inner is not None:
            self._thread.run(self._inner.cleanup_resources(restart=restart))

    def interrupt_kernel(self) -> None:
        self._thread.run(self._async().interrupt_kernel())

    def signal_kernel(self, signum: int) -> None:
        self._thread.run(self._async().signal_kernel(signum))

    def is_alive(self) -> bool:
        return self._inner is not None and self._thread.run(self._inner.is_alive())

    def client(self, **kwargs: Any) -> BridgeClient:  # type: ignore[override]
        """A client for this kernel (call ``start_channels()`` first)."""
        return BridgeClient(self._thread.call(self._async().client), self._thread)

    def close(self) -> None:
        """Stop the kernel (at once) if it runs, and the loop thread."""
        try:
            if self.has_kernel:
                self.shutdown_kernel(now=True)
        finally:
            self._thread.close()
