"""Registered servers: names, URLs and where their tokens come from.

Stored in ``<jupyter config dir>/kernelkit/servers.json`` (``KERNELKIT_SERVERS_DIR``
overrides the directory, for tests and sandboxes)::

    {"servers": {"<name>": {"url": "http://host:8888/", "token": "file" | "env" | null,
                            "token_env": "VAR"}}}

A token given as a file is copied into ``tokens/<name>`` beside it (mode 0600, in a 0700
directory); a token given as an environment variable is read from it at each use, and
only the variable's name is stored. Tokens never appear in ``servers.json``, reprs,
logs or error messages.

One server may also be named for a single run, unregistered: ``$KERNELKIT_SERVER`` (a
URL; ``kernelkit run --server URL`` sets it) is the server ``adhoc``, its token read
from ``$JUPYTER_TOKEN`` (the variable Jupyter itself uses).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kernelkit._jupyterpaths import jupyter_config_dir
from kernelkit.remote._errors import ServerConfigError

__all__ = [
    "ADHOC_NAME",
    "ADHOC_TOKEN_ENV",
    "ADHOC_URL_ENV",
    "SERVERS_DIR_ENV",
    "RemoteServer",
    "ServerRegistry",
    "adhoc_server",
    "servers_dir",
]

#: Environment variable naming the directory of ``servers.json`` and ``tokens/``.
SERVERS_DIR_ENV = "KERNELKIT_SERVERS_DIR"
#: Environment variable with the URL of an unregistered server used for one run.
ADHOC_URL_ENV = "KERNELKIT_SERVER"
#: The name that server gets (kernel ids ``remote/adhoc/...``); not registrable.
ADHOC_NAME = "adhoc"
#: Where its token is read from.
ADHOC_TOKEN_ENV = "JUPYTER_TOKEN"


def adhoc_server() -> RemoteServer | None:
    """The server ``$KERNELKIT_SERVER`` names for this run (None when unset).

    Raises:
        ServerConfigError: the URL is unusable.
    """
    url = os.environ.get(ADHOC_URL_ENV)
    if not url:
        return None
    return RemoteServer(name=ADHOC_NAME, url=url, token_env=ADHOC_TOKEN_ENV)


# A server's name is part of kernel ids (remote/<server>/<kernel>): no slashes.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def servers_dir() -> Path:
    """Where the registry lives: ``$KERNELKIT_SERVERS_DIR``, else
    ``jupyter_core.paths.jupyter_config_dir()/kernelkit``."""
    override = os.environ.get(SERVERS_DIR_ENV)
    if override:
        return Path(override)
    return Path(jupyter_config_dir()) / "kernelkit"


def check_server_name(name: str) -> str:
    """``name`` if it can name a server.

    Raises:
        ServerConfigError: it is empty, too long, or has characters other than letters,
            digits, ``_``, ``.`` and ``-`` (it becomes part of kernel ids).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ServerConfigError(
            f"server name {name!r} is not usable: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (it becomes part of ids: remote/<name>/...)"
        )
    return name


def normalize_url(url: str) -> str:
    """``url`` checked and ending with one ``/`` (``http://host:8888/base/``).

    Raises:
        ServerConfigError: not an http(s) URL with a host, or it carries credentials, a
            query or a fragment (a token belongs in --token-file or --token-env).
    """
    parts = urlsplit(url.strip()) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServerConfigError(
            f"server URL {url!r} must be http:// or https:// with a host, such as "
            "http://127.0.0.1:8888/"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ServerConfigError(
            "the server URL must not carry a query, a fragment or credentials: give the "
            "token with --token-file or --token-env"
        )
    try:
        parts.port  # noqa: B018  (a bad port raises here)
    except ValueError as exc:
        raise ServerConfigError(f"server URL has a bad port: {exc}") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"


@dataclass(frozen=True, slots=True)
class RemoteServer:
    """A Jupyter Server or gateway kernelkit may talk to.

    ``token_file`` (a file holding the token) or ``token_env`` (an environment variable
    holding it) say where the token comes from; neither means no token. The token
    itself is read by :meth:`token` when needed and is never part of the object's repr.
    """

    name: str
    url: str
    token_file: Path | None = field(default=None)
    token_env: str | None = field(default=None)

    def __post_init__(self) -> None:
        check_server_name(self.name)
        object.__setattr__(self, "url", normalize_url(self.url))
        if self.token_file is not None and self.token_env is not None:
            raise ServerConfigError(
                f"server {self.name!r}: give the token as a file or as an environment "
                "variable, not both"
            )
        if self.token_env is not None and not _ENV_NAME.fullmatch(self.token_env):
            raise ServerConfigError(
                f"server {self.name!r}: {self.token_env!r} is not an environment variable name"
            )

    @property
    def token_source(self) -> str:
        """Where the token comes from, for display: ``file``, ``env:VAR`` or ``none``."""
        if self.token_file is not None:
            return "file"
        if self.token_env is not None:
            return f"env:{self.token_env}"
        return "none"

    def token(self) -> str | None:
        """The token (None when the server has none).

        Raises:
            ServerConfigError: the token file is unreadable or empty, or the environment
                variable is unset or empty.
        """
        if self.token_file is not None:
            try:
                text = self.token_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ServerConfigError(
                    f"server {self.name!r}: cannot read its token file {self.token_file}: "
                    f"{getattr(exc, 'strerror', None) or exc}"
                ) from None
            if not text:
                raise ServerConfigError(
                    f"server {self.name!r}: its token file {self.token_file} is empty"
                )
            return text
        if self.token_env is not None:
            value = os.environ.get(self.token_env, "").strip()
            if not value:
                raise ServerConfigError(
                    f"server {self.name!r}: the environment variable {self.token_env} that "
                    "should hold its token is unset or empty"
                )
            return value
        return None


def read_token_file(path: Path) -> str:
    """The token in ``path`` (first line, stripped).

    Raises:
        ServerConfigError: unreadable, not text, or empty.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ServerConfigError(
            f"cannot read the token file {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    token = text.splitlines()[0].strip() if text else ""
    if not token:
        raise ServerConfigError(f"the token file {path} is empty")
    return token


class ServerRegistry:
    """The servers registered with ``kernelkit servers add`` (see the module docstring).

    ``directory`` defaults to :func:`servers_dir`.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._dir = Path(directory) if directory is not None else servers_dir()

    def __repr__(self) -> str:
        return f"<ServerRegistry {self._dir}>"

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def path(self) -> Path:
        """The ``servers.json`` file."""
        return self._dir / "servers.json"

    def _token_path(self, name: str) -> Path:
        return self._dir / "tokens" / name

    def _load(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ServerConfigError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ServerConfigError(
                f"{self.path} is not valid JSON ({exc}); fix or remove it"
            ) from None
        servers = data.get("servers") if isinstance(data, dict) else None
        if not isinstance(servers, dict):
            raise ServerConfigError(
                f'{self.path} must hold {{"servers": {{name: entry}}}}; fix or remove it'
            )
        return servers

    def _entry(self, name: str, entry: Any) -> RemoteServer:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ServerConfigError(f"{self.path}: server {name!r} has no URL; remove and add it")
        token = entry.get("token")
        return RemoteServer(
            name=name,
            url=entry["url"],
            token_file=self._token_path(name) if token == "file" else None,
            token_env=entry.get("token_env") if token == "env" else None,
        )

    def servers(self) -> list[RemoteServer]:
        """Every registered server, by name.

        Raises:
            ServerConfigError: ``servers.json`` is unreadable or malformed.
        """
        found = [self._entry(name, entry) for name, entry in sorted(self._load().items())]
        adhoc = adhoc_server()
        return [*found, adhoc] if adhoc is not None else found

    def get(self, name: str) -> RemoteServer:
        """The server registered as ``name``.

        Raises:
            ServerConfigError: no such server (the message lists the registered ones), or
                the registry is malformed.
        """
        if name == ADHOC_NAME:
            adhoc = adhoc_server()
            if adhoc is not None:
                return adhoc
        servers = self._load()
        if name not in servers:
            known = ", ".join(sorted(servers)) or "none"
            raise ServerConfigError(
                f"no server named {name!r} is registered (registered: {known}); add it with "
                "`kernelkit servers add NAME URL`"
            )
        return self._entry(name, servers[name])

    def add(
        self,
        name: str,
        url: str,
        *,
        token: str | None = None,
        token_env: str | None = None,
        replace: bool = False,
    ) -> RemoteServer:
        """Register a server. ``token`` is stored in a 0600 file; ``token_env`` names an
        environment variable read at each use. Returns the entry.

        Raises:
            ServerConfigError: a bad name or URL, both token sources given, the name is
                taken (without ``replace``), or the files cannot be written.
        """
        check_server_name(name)
        if name == ADHOC_NAME:
            raise ServerConfigError(
                f"the name {ADHOC_NAME!r} is kept for the server of a single run "
                f"(--server URL, ${ADHOC_URL_ENV}): choose another name"
            )
        if token is not None and token_env is not None:
            raise ServerConfigError(
                "give the token as a file or as an environment variable, not both"
            )
        if token is not None and not token.strip():
            raise ServerConfigError(f"server {name!r}: the token is empty")
        server = RemoteServer(
            name=name,
            url=url,
            token_file=self._token_path(name) if token is not None else None,
            token_env=token_env,
        )
        servers = self._load()
        if name in servers and not replace:
            raise ServerConfigError(
                f"a server named {name!r} is registered already; remove it first"
            )
        entry: dict[str, Any] = {"url": server.url, "token": None}
        if token is not None:
            self._write_private(self._token_path(name), token.strip() + "\n")
            entry["token"] = "file"
        else:
            with contextlib.suppress(FileNotFoundError):
                self._token_path(name).unlink()
            if token_env is not None:
                entry["token"] = "env"
                entry["token_env"] = token_env
        servers[name] = entry
        self._save(servers)
        return server

    def remove(self, name: str) -> None:
        """Forget a server and delete its token file.

        Raises:
            ServerConfigError: no such server.
        """
        servers = self._load()
        if name not in servers:
            known = ", ".join(sorted(servers)) or "none"
            raise ServerConfigError(f"no server named {name!r} is registered (registered: {known})")
        del servers[name]
        self._save(servers)
        with contextlib.suppress(FileNotFoundError):
            self._token_path(name).unlink()

    def _save(self, servers: dict[str, Any]) -> None:
        text = json.dumps({"servers": servers}, indent=2, sort_keys=True) + "\n"
        self._write_private(self.path, text)

    def _write_private(self, path: Path, text: str) -> None:
        """Write ``text`` to ``path`` atomically, mode 0600, in 0700 directories."""
        import tempfile  # only when writing: listing servers should not pay for it

        try:
            for directory in (self._dir, path.parent):
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(directory, 0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.chmod(tmp, 0o600)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise ServerConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
