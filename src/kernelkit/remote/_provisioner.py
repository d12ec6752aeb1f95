"""The remote provisioner: a kernel started, controlled and stopped through a server's
REST API, talked to over the server's WebSocket.

Lifecycle as the manager drives it (see :class:`~kernelkit.provisioning.KernelProvisionerBase`):

- ``pre_launch`` keeps only ``KERNEL_*`` variables (what the gateways pass to kernels;
  Jupyter Server ignores them), with ``KERNEL_USERNAME`` defaulting to the local user
  (Enterprise Gateway refuses a start without it);
- ``launch_kernel`` is ``POST /api/kernels`` (or, attaching, a check that the kernel
  exists); there is no :class:`~kernelkit.ConnectionInfo`: clients reach the kernel
  through :meth:`RemoteProvisioner.create_transport`;
- ``send_signal(SIGINT)`` is ``POST .../interrupt``; ``terminate``/``kill`` are
  ``DELETE``, or ``POST .../restart`` with ``restart=True`` (the kernel keeps its id and
  URL, so connected clients follow it);
- ``poll``/``wait`` ask the server (404: gone), and hear at once what a transport from
  :meth:`create_transport` reports (IOPub ``status: dead``).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import signal
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import KernelDied, KernelStartError, ProvisioningError
from kernelkit.protocol import Session
from kernelkit.provisioning import KernelProvisionerBase, LaunchParams
from kernelkit.remote._errors import ServerError, ServerUnreachable, TokenRefused
from kernelkit.remote._provider import PROVISIONER_NAME
from kernelkit.remote._servers import RemoteServer, ServerRegistry
from kernelkit.specs import KernelSpec

if TYPE_CHECKING:
    from kernelkit.remote._rest import ServerAPI
    from kernelkit.transport._websocket import WebSocketTransport

__all__ = ["PROVISIONER_NAME", "RemoteProvisioner"]

#: Exit status reported for a remote kernel that is gone (the server does not say).
GONE = -256
#: How long a DELETE answered with a server error is repeated (see ``_delete``).
_DELETE_RETRY_BUDGET = 3.0


def kernel_username() -> str:
    """The local user's name, for ``KERNEL_USERNAME``."""
    try:
        return getpass.getuser()
    except Exception:  # no name for this uid (a container): the gateways still need one
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "kernelkit"


class RemoteProvisioner(KernelProvisionerBase):
    """Runs one kernel on a Jupyter Server, Kernel Gateway or Enterprise Gateway.

    ``server`` is a :class:`RemoteServer` or the name of a registered one (with ``url``
    checked against it when given). ``kernel_name`` is the server's kernelspec (default:
    the spec's name). ``remote_kernel_id`` attaches to a kernel already running there
    instead of starting one (shutting it down still deletes it). ``poll_interval`` is
    how often :meth:`wait` asks the server whether the kernel still exists.
    """

    def __init__(
        self,
        *,
        kernel_id: str,
        kernel_spec: KernelSpec,
        server: RemoteServer | str,
        url: str | None = None,
        kernel_name: str | None = None,
        remote_kernel_id: str | None = None,
        poll_interval: float = 1.0,
        request_timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(kernel_id=kernel_id, kernel_spec=kernel_spec, **kwargs)
        if isinstance(server, str):
            server = ServerRegistry().get(server)
        if url is not None and url.rstrip("/") != server.url.rstrip("/"):
            raise ProvisioningError(
                f"kernel {kernel_spec.name!r}: server {server.name!r} is registered at "
                f"{server.url}, not {url}; list kernels again"
            )
        self.server = server
        self.remote_kernel_name = kernel_name or kernel_spec.name
        self.remote_kernel_id: str | None = remote_kernel_id
        self._attach = remote_kernel_id is not None
        self._poll_interval = poll_interval
        self._request_timeout = request_timeout
        self._api: ServerAPI | None = None
        self._api_loop: asyncio.AbstractEventLoop | None = None
        self._launch_env: dict[str, str] = {}
        self._gone: asyncio.Event | None = None
        self._exit: int | None = None
        self._restarted_in_place = False

    def __repr__(self) -> str:
        return (
            f"<RemoteProvisioner {self.server.name}/{self.remote_kernel_name} "
            f"kernel={self.remote_kernel_id or '(not started)'}>"
        )

    # -- REST --------------------------------------------------------------------------

    def _rest(self) -> ServerAPI:
        """The REST client, made on (and bound to) the running loop."""
        loop = asyncio.get_running_loop()
        if self._api is None or self._api_loop is not loop:
            from kernelkit.remote._rest import ServerAPI  # httpx: imported when launching

            self._api = ServerAPI(self.server, timeout=self._request_timeout)
            self._api_loop = loop
        return self._api

    def _gone_event(self) -> asyncio.Event:
        if self._gone is None:
            self._gone = asyncio.Event()
        return self._gone

    def _mark_gone(self, status: int = GONE) -> None:
        if self._exit is None:
            self._exit = status
        self._gone_event().set()

    # -- launching ---------------------------------------------------------------------

    @property
    def interrupt_mode(self) -> Literal["signal", "message"]:
        # "signal": the manager calls send_signal(SIGINT), which is the server's
        # interrupt endpoint (it interrupts the way the kernelspec says).
        return "signal"

    async def pre_launch(
        self,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        extra_arguments: Sequence[str] = (),
    ) -> LaunchParams:
        """The ``KERNEL_*`` variables of ``env`` (over this process's with
        ``inherit_env``), ``KERNEL_USERNAME`` defaulting to the local user. ``cwd`` and
        ``extra_arguments`` mean nothing to a server's kernelspec.

        Raises:
            ProvisioningError: ``extra_arguments`` were given (a server starts its
                kernelspec as it is).
        """
        if extra_arguments:
            raise ProvisioningError(
                f"kernel {self.kernel_spec.name!r} runs on server {self.server.name!r}, which "
                "starts its kernelspec as it is: extra arguments cannot be passed"
            )
        base = {**os.environ, **(env or {})} if inherit_env else dict(env or {})
        kernel_env = {k: v for k, v in base.items() if k.startswith("KERNEL_")}
        kernel_env.setdefault("KERNEL_USERNAME", kernel_username())
        self._launch_env = kernel_env
        return LaunchParams(cmd=(), env=kernel_env, cwd=None)

    async def launch_kernel(  # type: ignore[override]
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> ConnectionInfo | None:
        """Start the kernel on the server (``POST /api/kernels``), or check that the kernel
        to attach to exists; after :meth:`terminate` with ``restart=True`` the server has
        restarted it already and nothing is done. Returns None: there is no connection
        info (use :meth:`create_transport`).

        Raises:
            NoSuchKernel: the server has no such kernelspec.
            KernelStartError: the server could not start it, is unreachable, refused the
                token, or (attaching) has no such kernel.
        """
        self._exit = None
        self._gone = None
        if self._restarted_in_place and self.remote_kernel_id is not None:
            self._restarted_in_place = False
            return None
        api = self._rest()
        try:
            if self._attach and self.remote_kernel_id is not None:
                model = await api.get_kernel(self.remote_kernel_id)
                if model is None:
                    raise KernelStartError(
                        f"server {self.server.name!r} ({self.server.url}) has no kernel "
                        f"{self.remote_kernel_id}",
                        kernel_name=self.kernel_spec.name,
                    )
            else:
                kernel_env = dict(env) if env is not None else self._launch_env
                model = await api.start_kernel(self.remote_kernel_name, env=kernel_env)
                self.remote_kernel_id = model.id
        except ServerError as exc:
            raise KernelStartError(str(exc), kernel_name=self.kernel_spec.name) from exc
        return None

    def create_transport(
        self, session: Session | None = None, **options: Any
    ) -> WebSocketTransport:
        """A new WebSocket transport to this kernel (not connected), for a client:
        ``AsyncKernelClient(p.create_transport(), kernel_name=...)``. Its IOPub
        ``status: dead`` reaches :meth:`wait` at once. ``options`` go to
        :class:`~kernelkit.transport.WebSocketTransport` (``ping_interval``,
        ``tcp_tuning``, ...).

        Raises:
            ProvisioningError: no kernel runs.
            ServerConfigError: the server's token cannot be read.
        """
        if self.remote_kernel_id is None:
            raise ProvisioningError(
                f"kernel {self.kernel_spec.name!r} on server {self.server.name!r} is not "
                "started: nothing to connect to"
            )
        from kernelkit.transport._websocket import WebSocketTransport, channels_url

        hook = options.pop("on_status", None)

        def on_status(state: str) -> None:
            if state == "dead":
                self._mark_gone()
            if hook is not None:
                hook(state)

        return WebSocketTransport(
            channels_url(self.server.url, self.remote_kernel_id),
            session,
            token=self.server.token(),
            kernel_name=self.kernel_spec.name,
            on_status=on_status,
            **options,
        )

    # -- lifetime ----------------------------------------------------------------------

    @property
    def has_process(self) -> bool:
        return self.remote_kernel_id is not None

    async def poll(self) -> int | None:
        """None while the server has the kernel, else :data:`GONE`.

        Raises:
            ServerError: the server cannot be asked (unreachable, token refused).
        """
        if self._exit is not None:
            return self._exit
        if self.remote_kernel_id is None:
            return GONE
        if await self._rest().get_kernel(self.remote_kernel_id) is None:
            self._mark_gone()
            return self._exit
        return None

    async def wait(self) -> int | None:
        """Wait until the server no longer has the kernel (asked every ``poll_interval``
        seconds, or told at once by a transport that heard ``status: dead``). A server
        that cannot be reached keeps being asked."""
        gone = self._gone_event()
        while self._exit is None:
            try:
                status = await self.poll()
            except ServerError:
                status = None  # a server restarting or a network blip: ask again
            if status is not None:
                return status
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(gone.wait(), self._poll_interval)
        return self._exit

    async def send_signal(self, signum: int) -> None:
        """SIGINT: the server's interrupt; SIGTERM and SIGKILL: shut it down.

        Raises:
            ProvisioningError: any other signal (a server forwards none).
            KernelDied: the kernel is gone.
        """
        if signum == signal.SIGINT:
            if self.remote_kernel_id is None:
                return
            await self._rest().interrupt_kernel(
                self.remote_kernel_id, kernel_name=self.kernel_spec.name
            )
        elif signum in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
            await self.terminate()
        else:
            raise ProvisioningError(
                f"kernel {self.kernel_spec.name!r} runs on server {self.server.name!r}: "
                f"only SIGINT (interrupt) and SIGTERM/SIGKILL (shutdown) reach it, not "
                f"signal {signum}"
            )

    async def terminate(self, restart: bool = False) -> None:
        """``DELETE`` the kernel; with ``restart``, ``POST .../restart`` instead (the
        kernel keeps its id, so its clients' sockets keep working)."""
        kernel_id = self.remote_kernel_id
        if kernel_id is None or self._exit is not None:
            return
        api = self._rest()
        if restart:
            await api.restart_kernel(kernel_id, kernel_name=self.kernel_spec.name)
            self._restarted_in_place = True
            self._mark_gone(0)  # the old kernel is gone: the manager relaunches (no-op)
            return
        await self._delete(kernel_id)
        self._mark_gone(0)

    async def _delete(self, kernel_id: str) -> None:
        """DELETE the kernel (gone already counts as deleted).

        jupyter_server 2.21.1 answers 500 (``InvalidStateError`` inside
        ``shutdown_kernel``) to a DELETE that comes while it is restarting a kernel that
        died; the restart ends within about a second and a DELETE then succeeds. The
        server announces nothing we could wait for (no REST event; its WebSocket is never
        closed), so the DELETE itself is repeated after a server error, with doubling
        pauses, within :data:`_DELETE_RETRY_BUDGET` seconds.
        """
        api = self._rest()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _DELETE_RETRY_BUDGET
        pause = 0.05
        while True:
            try:
                await api.delete_kernel(kernel_id)
                return
            except (ServerUnreachable, TokenRefused):
                raise
            except ServerError:
                if loop.time() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause *= 2

    async def kill(self, restart: bool = False) -> None:
        """As :meth:`terminate`: a server offers nothing harder than DELETE."""
        await self.terminate(restart=restart)

    async def restart_kernel(self) -> None:
        """Restart the kernel in place through the server (``POST .../restart``).

        Raises:
            KernelDied: the kernel is gone.
            ServerError: the server cannot be reached.
        """
        if self.remote_kernel_id is None:
            raise ProvisioningError(f"kernel {self.kernel_spec.name!r} is not started")
        await self._rest().restart_kernel(self.remote_kernel_id, kernel_name=self.kernel_spec.name)

    async def cleanup(self, restart: bool = False) -> None:
        """Forget the kernel (deleting it on the server if it still runs, unless
        restarting) and close the REST client."""
        try:
            if not restart and self.remote_kernel_id is not None and self._exit is None:
                try:
                    await self._delete(self.remote_kernel_id)
                except ServerError as exc:
                    raise ProvisioningError(
                        f"kernel {self.remote_kernel_id} on server {self.server.name!r} could "
                        f"not be shut down: {exc}"
                    ) from exc
        finally:
            if not restart:
                self.remote_kernel_id = None
                self._attach = False
            api, self._api = self._api, None
            if api is not None and self._api_loop is asyncio.get_running_loop():
                await api.aclose()
            self._api_loop = None

    def died_error(self, exit_code: int | None, message: str = "the kernel exited") -> KernelDied:
        return KernelDied(
            f"{message} (on server {self.server.name!r}, {self.server.url})",
            kernel_name=self.kernel_spec.name,
            exit_code=None if exit_code == GONE else exit_code,
        )

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return recommended

    async def get_provisioner_info(self) -> dict[str, Any]:
        return {
            "kernel_id": self.kernel_id,
            "server": self.server.name,
            "url": self.server.url,
            "remote_kernel_id": self.remote_kernel_id,
        }

    async def load_provisioner_info(self, provisioner_info: Mapping[str, Any]) -> None:
        """Restore what :meth:`get_provisioner_info` saved (the token is looked up again).

        Raises:
            ProvisioningError: the info is not from this provisioner.
        """
        await super().load_provisioner_info({"kernel_id": provisioner_info.get("kernel_id")})
        remote_id = provisioner_info.get("remote_kernel_id")
        if remote_id is not None and not isinstance(remote_id, str):
            raise ProvisioningError("provisioner info: 'remote_kernel_id' must be a string")
        server = provisioner_info.get("server")
        if isinstance(server, str) and server != self.server.name:
            self.server = ServerRegistry().get(server)
        self.remote_kernel_id = remote_id
