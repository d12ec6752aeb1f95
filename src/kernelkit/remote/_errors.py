"""The errors of remote servers (subclasses of :class:`~kernelkit.KernelError`).

::

    KernelError
    └── ServerError                a Jupyter Server or gateway failed a request
        ├── ServerUnreachable      nothing answers at the server's URL (down, wrong port)
        ├── TokenRefused           the server answered 401/403: a missing or wrong token
        └── ServerConfigError      a server entry (name, URL, token source) is unusable

Kept here until they join the tree in ``kernelkit._errors``. Messages name the server
and its URL, never its token.
"""

from __future__ import annotations

from kernelkit._errors import KernelError

__all__ = [
    "ServerConfigError",
    "ServerError",
    "ServerUnreachable",
    "TokenRefused",
]


class ServerError(KernelError):
    """A Jupyter Server, Kernel Gateway or Enterprise Gateway failed a request."""


class ServerUnreachable(ServerError):
    """Nothing answers at the server's URL (it is down, or the URL is wrong)."""


class TokenRefused(ServerError):
    """The server refused our token (HTTP 401 or 403)."""


class ServerConfigError(ServerError):
    """A registered server's entry is unusable: bad name or URL, unreadable token."""
