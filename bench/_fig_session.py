"""Figure 4: Session serialize, and deserialize + verify, for a small and a 1 MB message.

In one process, no sockets. kernelkit's Session, jupyter_client's Session with the packer
it picks by itself (orjson when importable) and with its json packer, and the floor: a
hand-rolled hmac-sha256 + orjson loop. Messages are execute_requests; the big one carries
1 MiB of code. Deserialize gets distinct messages (every Session refuses replays).

What the floor's deserialize does: find the delimiter, HMAC the four JSON frames with the
hmac module (a copy of a keyed HMAC object per message), compare in constant time, refuse
a signature seen before (an unbounded set, cleared at 100k), and parse all four frames
with orjson into plain dicts. What it leaves out, and kernelkit does: the size cap, the
signature-length check, a bounded first-in-first-out replay history, checking every
header field's type, and building the Header and Message objects. Its HMAC goes through
the hmac module's Python wrapper; with the inner and outer hashes prepared once (as
kernelkit does) the same loop is about 1.4x faster on small messages, so this floor is
the hand-written client most would write, not the least work possible.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from bench import _kk
from bench._config import Config
from bench._core import (
    EXTRA,
    FLOOR,
    JUPYTER_CLIENT,
    KERNELKIT,
    Contestant,
    Group,
    Metric,
    Target,
)
from bench._raw import RawSession, execute_content

KEY = secrets.token_hex(16).encode()
BIG = 1 << 20

_TARGET = Target(FLOOR, ">=", 0.9)
METRICS = [
    Metric("ser_small", "session serialize, small (execute_request)", "msg/s", True, _TARGET),
    Metric("ser_big", "session serialize, 1 MiB", "msg/s", True, _TARGET),
    Metric("de_small", "session deserialize+verify, small", "msg/s", True, _TARGET),
    Metric("de_big", "session deserialize+verify, 1 MiB", "msg/s", True, _TARGET),
]


def _contents() -> dict[str, dict[str, Any]]:
    return {
        "small": execute_content("print('hello, world')"),
        "big": execute_content("x" * BIG),
    }


_FRAMES: dict[tuple[str, int], list[list[bytes]]] = {}


def _frames(size: str, n: int) -> list[list[bytes]]:
    """n distinct signed messages (unique msg_id each), as a kernel receives them.

    Made once and shared: every sample deserializes them with new Session objects, whose
    replay histories start empty.
    """
    key = (size, n)
    if key not in _FRAMES:
        s = RawSession(KEY)
        content = _contents()[size]
        _FRAMES[key] = [
            [b"client-id", *s.serialize(s.header("execute_request"), content)] for _ in range(n)
        ]
    return _FRAMES[key]


class _SessionContestant(Contestant):
    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for size in ("small", "big"):
            n = self.counts[size]
            out[f"ser_{size}"] = n / self.time_serialize(size, n)
            frames = _frames(size, n)
            out[f"de_{size}"] = n / self.time_deserialize(frames)
        return out

    def time_serialize(self, size: str, n: int) -> float:
        raise NotImplementedError

    def time_deserialize(self, frames: list[list[bytes]]) -> float:
        raise NotImplementedError


class KernelkitSession(_SessionContestant):
    name = KERNELKIT
    role = KERNELKIT
    note = "orjson"

    def setup(self) -> None:
        _kk.session(KEY)  # missing if Session does not exist
        c = _contents()
        s = _kk.session(KEY)
        self.msgs = {k: s.msg("execute_request", v) for k, v in c.items()}

    def time_serialize(self, size: str, n: int) -> float:
        s = _kk.session(KEY)
        serialize, msg = s.serialize, self.msgs[size]
        t0 = time.perf_counter()
        for _ in range(n):
            serialize(msg)
        return time.perf_counter() - t0

    def time_deserialize(self, frames: list[list[bytes]]) -> float:
        deserialize = _kk.session(KEY).deserialize
        t0 = time.perf_counter()
        for f in frames:
            deserialize(f)
        return time.perf_counter() - t0


class JupyterClientSession(_SessionContestant):
    role = JUPYTER_CLIENT

    def __init__(self, counts: dict[str, int], packer: str | None) -> None:
        super().__init__(counts)
        self.packer = packer
        if packer is not None:
            self.name, self.role = f"jupyter_client[{packer}]", EXTRA
        else:
            self.name = JUPYTER_CLIENT

    def new(self) -> Any:
        from jupyter_client.session import Session

        s = Session(key=KEY)
        if self.packer is not None:
            s.packer = self.packer
        return s

    def setup(self) -> None:
        s = self.new()
        self.note = f"packer: {s.packer}" + (" (its default)" if self.packer is None else "")
        self.msgs = {k: s.msg("execute_request", v) for k, v in _contents().items()}

    def time_serialize(self, size: str, n: int) -> float:
        s = self.new()
        serialize, msg = s.serialize, self.msgs[size]
        t0 = time.perf_counter()
        for _ in range(n):
            serialize(msg)
        return time.perf_counter() - t0

    def time_deserialize(self, frames: list[list[bytes]]) -> float:
        s = self.new()
        feed, deserialize = s.feed_identities, s.deserialize
        t0 = time.perf_counter()
        for f in frames:
            _, msg_list = feed(f)
            deserialize(msg_list)
        return time.perf_counter() - t0


class FloorSession(_SessionContestant):
    name = FLOOR
    role = FLOOR
    note = "hmac-sha256 + orjson by hand"

    def setup(self) -> None:
        s = RawSession(KEY)
        self.msgs = {k: (s.header("execute_request"), v) for k, v in _contents().items()}

    def time_serialize(self, size: str, n: int) -> float:
        serialize = RawSession(KEY).serialize
        header, content = self.msgs[size]
        t0 = time.perf_counter()
        for _ in range(n):
            serialize(header, content)
        return time.perf_counter() - t0

    def time_deserialize(self, frames: list[list[bytes]]) -> float:
        deserialize = RawSession(KEY).deserialize
        loads = orjson.loads
        t0 = time.perf_counter()
        for f in frames:
            deserialize(f)
            loads(f[5])  # the metadata frame too: a full parse, as the others do
        return time.perf_counter() - t0


def groups(cfg: Config) -> list[Group]:
    counts = {"small": cfg.pick(3000, 10000), "big": cfg.pick(15, 40)}
    return [
        Group(
            figure=4,
            name="session",
            metrics=METRICS,
            contestants=[
                lambda: KernelkitSession(counts),
                lambda: JupyterClientSession(counts, None),
                lambda: JupyterClientSession(counts, "json"),
                lambda: FloorSession(counts),
            ],
            reps=cfg.reps(3, 7),
            budget_s=cfg.pick(20, 60),
            note=f"{counts['small']} small / {counts['big']} big messages per sample",
        )
    ]
