"""The REST API of Jupyter Server, Kernel Gateway and Enterprise Gateway (httpx, asyncio).

What the three servers answer (PROTOCOL.md): ``GET /api`` gives the version, plus
``gateway_version`` on Enterprise Gateway; ``/api/kernelspecs``; ``/api/kernels`` (403 on
the gateways unless they list kernels); ``POST /api/kernels`` (201, or 500 with a
traceback for an unknown kernelspec); ``/interrupt`` (204), ``/restart`` (200),
``DELETE`` (204); 404 once a kernel is gone. Every failure becomes a
:class:`~kernelkit.remote.ServerError` (or :class:`~kernelkit.NoSuchKernel`,
:class:`~kernelkit.KernelDied`) naming the server and what to do, never the token nor
the server's traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx

from kernelkit._errors import KernelDied, KernelStartError, NoSuchKernel
from kernelkit.remote._errors import ServerError, ServerUnreachable, TokenRefused
from kernelkit.remote._servers import RemoteServer

__all__ = [
    "KERNEL_GATEWAY",
    "ENTERPRISE_GATEWAY",
    "JUPYTER_SERVER",
    "KernelModel",
    "RemoteKernelSpec",
    "ServerAPI",
    "ServerInfo",
]

ServerKind = Literal["jupyter_server", "kernel_gateway", "enterprise_gateway"]
JUPYTER_SERVER: ServerKind = "jupyter_server"
KERNEL_GATEWAY: ServerKind = "kernel_gateway"
ENTERPRISE_GATEWAY: ServerKind = "enterprise_gateway"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What ``GET /api`` (and a probe) told about a server."""

    kind: ServerKind
    version: str
    gateway_version: str | None = None
    lists_kernels: bool | None = None


@dataclass(frozen=True, slots=True)
class RemoteKernelSpec:
    """One entry of ``GET /api/kernelspecs``: the kernel.json and resource URLs."""

    name: str
    spec: Mapping[str, Any]
    resources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KernelModel:
    """A running kernel as the server describes it."""

    id: str
    name: str
    execution_state: str = ""
    last_activity: str = ""
    connections: int = 0

    @classmethod
    def from_json(cls, data: Any, where: str) -> KernelModel:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ServerError(f"{where} answered a kernel model without an id: {str(data)[:200]}")
        connections = data.get("connections", 0)
        return cls(
            id=data["id"],
            name=str(data.get("name", "")),
            execution_state=str(data.get("execution_state", "")),
            last_activity=str(data.get("last_activity", "")),
            connections=connections if isinstance(connections, int) else 0,
        )


class ServerAPI:
    """Async REST client of one server. Use as ``async with ServerAPI(server) as api``
    (or call :meth:`aclose`). ``timeout`` bounds each request (seconds)."""

    def __init__(self, server: RemoteServer, *, timeout: float = 10.0) -> None:
        self.server = server
        token = server.token()
        headers = {"Authorization": f"token {token}"} if token else {}
        self._client = httpx.AsyncClient(
            base_url=server.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            trust_env=False,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"<ServerAPI {self.server.name} {self.server.url}>"

    async def __aenter__(self) -> ServerAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def _where(self) -> str:
        return f"server {self.server.name!r} ({self.server.url})"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        ok: tuple[int, ...] = (200,),
        what: str,
    ) -> httpx.Response:
        """One request; any status outside ``ok`` becomes a ServerError subclass."""
        try:
            response = await self._client.request(method, path, json=json)
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(
                f"{self._where} did not answer {what} in time ({type(exc).__name__}); is it "
                "overloaded or hung?"
            ) from None
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"cannot reach {self._where} for {what}: {exc or type(exc).__name__}; is it "
                "running at that URL?"
            ) from None
        status = response.status_code
        if status in ok:
            return response
        reason = _reason(response)
        # A Jupyter Server answers a POST with a wrong token as it would a browser's
        # without a cookie: 403 "'_xsrf' argument missing". That is the token too.
        token_refused = not reason or "forbidden" in reason.lower() or "_xsrf" in reason
        if status == 403 and not token_refused:
            # Not the token: the server says why (Enterprise Gateway: "User 'root' is not
            # authorized ... Ensure KERNEL_USERNAME is set").
            raise ServerError(f"{self._where} refused {what} (HTTP 403){reason}")
        if status in (401, 403):
            raise TokenRefused(
                f"{self._where} refused the token for {what} (HTTP {status}): check the token "
                f"given for this server (`kernelkit servers add {self.server.name} URL "
                "--token-file F` replaces it)" + _reason(response)
            )
        raise ServerError(f"{self._where} failed {what}: HTTP {status}{_reason(response)}")

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ServerError(
                f"{self._where} answered {what} with something that is not JSON "
                f"({response.headers.get('content-type', 'no content type')}): is this a "
                "Jupyter server?"
            ) from None

    # -- the server --------------------------------------------------------------------

    async def info(self) -> ServerInfo:
        """Which server this is: Jupyter Server, Kernel Gateway or Enterprise Gateway.

        Raises:
            ServerUnreachable, TokenRefused, ServerError: as for every request.
        """
        response = await self._request("GET", "api", what="GET /api")
        data = self._json(response, "GET /api")
        if not isinstance(data, dict) or not isinstance(data.get("version"), str):
            raise ServerError(
                f"{self._where} answered GET /api without a version: is this a Jupyter server?"
            )
        if isinstance(data.get("gateway_version"), str):
            return ServerInfo(ENTERPRISE_GATEWAY, data["version"], data["gateway_version"])
        # Jupyter Server serves /api/status; Kernel Gateway's personality does not.
        probe = await self._request("GET", "api/status", ok=(200, 404), what="GET /api/status")
        kind = JUPYTER_SERVER if probe.status_code == 200 else KERNEL_GATEWAY
        return ServerInfo(kind, data["version"])

    async def kernelspecs(self) -> tuple[str | None, list[RemoteKernelSpec]]:
        """``(default name, kernelspecs)``; resource URLs are absolute."""
        response = await self._request("GET", "api/kernelspecs", what="GET /api/kernelspecs")
        data = self._json(response, "GET /api/kernelspecs")
        specs = data.get("kernelspecs") if isinstance(data, dict) else None
        if not isinstance(specs, dict):
            raise ServerError(f"{self._where} answered GET /api/kernelspecs without kernelspecs")
        found = []
        for name, entry in sorted(specs.items()):
            if not isinstance(entry, dict) or not isinstance(entry.get("spec"), dict):
                continue
            resources = entry.get("resources")
            urls = {
                key: str(self._client.base_url.join(value.lstrip("/")))
                for key, value in (resources.items() if isinstance(resources, dict) else ())
                if isinstance(value, str)
            }
            found.append(RemoteKernelSpec(name=name, spec=entry["spec"], resources=urls))
        default = data.get("default")
        return (default if isinstance(default, str) else None), found

    async def kernels(self) -> list[KernelModel]:
        """The running kernels.

        Raises:
            TokenRefused: also when a gateway does not list kernels (403 unless started
                with ``list_kernels`` on); the message says so.
        """
        response = await self._request("GET", "api/kernels", ok=(200, 403), what="GET /api/kernels")
        if response.status_code == 403:
            raise TokenRefused(
                f"{self._where} does not list its kernels (HTTP 403): a Kernel Gateway or "
                "Enterprise Gateway lists them only when started with list_kernels on "
                "(--JupyterWebsocketPersonality.list_kernels=True, "
                "--EnterpriseGatewayApp.list_kernels=True); a Jupyter Server refused the token"
            )
        data = self._json(response, "GET /api/kernels")
        if not isinstance(data, list):
            raise ServerError(f"{self._where} answered GET /api/kernels with no list")
        return [KernelModel.from_json(item, self._where) for item in data]

    # -- one kernel --------------------------------------------------------------------

    def _kernel_path(self, kernel_id: str, tail: str = "") -> str:
        return f"api/kernels/{quote(kernel_id, safe='')}{tail}"

    def _gone(self, kernel_id: str, kernel_name: str | None) -> KernelDied:
        return KernelDied(
            f"kernel {kernel_id} is gone from {self._where} (HTTP 404): it was shut down, "
            "or the server gave up restarting it",
            kernel_name=kernel_name,
        )

    async def get_kernel(self, kernel_id: str) -> KernelModel | None:
        """The kernel's model, or None when the server does not know it (404)."""
        response = await self._request(
            "GET", self._kernel_path(kernel_id), ok=(200, 404), what=f"GET kernel {kernel_id}"
        )
        if response.status_code == 404:
            return None
        return KernelModel.from_json(self._json(response, "GET kernel"), self._where)

    async def start_kernel(
        self, name: str, *, env: Mapping[str, str] | None = None, path: str | None = None
    ) -> KernelModel:
        """``POST /api/kernels``: start a kernel of kernelspec ``name``.

        Raises:
            NoSuchKernel: the server has no kernelspec ``name`` (the message lists its
                kernelspecs when it can).
            KernelStartError: the server failed to start it (its own reason, without
                the traceback it may send).
            ServerUnreachable, TokenRefused: as for every request.
        """
        body: dict[str, Any] = {"name": name}
        if env:
            body["env"] = dict(env)
        if path is not None:
            body["path"] = path
        what = f"POST /api/kernels (start {name!r})"
        try:
            response = await self._request(
                "POST", "api/kernels", json=body, ok=(200, 201), what=what
            )
        except TokenRefused:
            raise
        except ServerError as exc:
            await self._explain_start_failure(name, exc)
            raise
        return KernelModel.from_json(self._json(response, what), self._where)

    async def _explain_start_failure(self, name: str, exc: ServerError) -> None:
        """Raise NoSuchKernel when ``name`` is not one of the server's kernelspecs, else a
        KernelStartError with the server's reason; return if it cannot tell."""
        try:
            _, specs = await self.kernelspecs()
        except ServerError:
            return
        names = [s.name for s in specs]
        if name not in names:
            prefix = f"remote/{self.server.name}/"
            raise NoSuchKernel(prefix + name, available=[prefix + n for n in names]) from None
        raise KernelStartError(
            f"the server could not start kernelspec {name!r}: {exc}",
            kernel_name=name,
        ) from None

    async def interrupt_kernel(self, kernel_id: str, *, kernel_name: str | None = None) -> None:
        """``POST .../interrupt``. Raises KernelDied when the kernel is gone (404)."""
        response = await self._request(
            "POST",
            self._kernel_path(kernel_id, "/interrupt"),
            ok=(200, 204, 404),
            what=f"interrupt kernel {kernel_id}",
        )
        if response.status_code == 404:
            raise self._gone(kernel_id, kernel_name)

    async def restart_kernel(
        self, kernel_id: str, *, kernel_name: str | None = None
    ) -> KernelModel:
        """``POST .../restart`` (the kernel keeps its id). Raises KernelDied on 404."""
        response = await self._request(
            "POST",
            self._kernel_path(kernel_id, "/restart"),
            ok=(200, 404),
            what=f"restart kernel {kernel_id}",
        )
        if response.status_code == 404:
            raise self._gone(kernel_id, kernel_name)
        return KernelModel.from_json(self._json(response, "restart"), self._where)

    async def delete_kernel(self, kernel_id: str) -> bool:
        """``DELETE`` the kernel; False when it was gone already (404)."""
        response = await self._request(
            "DELETE",
            self._kernel_path(kernel_id),
            ok=(200, 204, 404),
            what=f"shut down kernel {kernel_id}",
        )
        return response.status_code != 404


def _reason(response: httpx.Response) -> str:
    """The server's own short reason (``message`` or ``reason`` of a JSON error), never a
    traceback; empty when there is none."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    for key in ("message", "reason"):
        text = data.get(key)
        if isinstance(text, str) and text.strip():
            line = text.strip().splitlines()[-1][:300]
            return f": {line}"
    return ""
