"""A seeded corpus of malformed Jupyter frame lists, and a runner that feeds it to a Session.

Each case starts from a valid message and applies one or more mutations: truncation,
dropped or extra frames, a missing or doubled delimiter, wrong JSON types, missing or
mistyped header fields, huge or malformed signatures, deep nesting, non-UTF-8, non-object
JSON, byte flips. Half of the cases are re-signed with the key after mutating, so the
checks behind the signature are exercised too (a buggy peer holding the key).

The verdict for each case is one of: rejected (RemoteProtocolError for kernelkit, a
ValueError for jupyter_client), accepted (the result passes an independent type check),
wrong-typed (accepted but the check fails), or crashed (any other exception).

Run as a script for the big corpus, optionally against jupyter_client too::

    python -m tests.protocol.fuzz_frames 100000 [--jupyter-client] [--seed N]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import hmac
import random
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from kernelkit import RemoteProtocolError
from kernelkit.protocol import DELIMITER, Header, Message, Session

KEY = b"f00dfeed-1234-4321-abcd-0123456789ab"
SCHEME = "hmac-sha256"

Frames = list[Any]


def _sign(frames: Frames) -> Frames:
    """Re-sign the four JSON frames after the delimiter, if the layout still has them."""
    try:
        i = next(i for i, f in enumerate(frames) if f == DELIMITER)
    except StopIteration:
        return frames
    parts = frames[i + 2 : i + 6]
    if len(parts) < 4 or not all(isinstance(p, (bytes, bytearray, memoryview)) for p in parts):
        return frames
    mac = hmac.new(KEY, digestmod=hashlib.sha256)
    for p in parts:
        mac.update(p)
    out = list(frames)
    out[i + 1] = mac.hexdigest().encode()
    return out


_DATE = "2024-05-06T07:08:09.123456+00:00"
_REQUEST = Header(msg_id="r" * 32, msg_type="execute_request", session="fuzz", date=_DATE)


def _valid_message(rng: random.Random, tx: Session) -> Frames:
    """A fresh valid message (a new seeded id, so a new signature) of a random shape."""
    shapes: list[tuple[str, dict[str, Any], Header | None, str | None, tuple[bytes, ...]]] = [
        ("execute_request", {"code": "x = 1", "user_expressions": {}}, None, None, ()),
        ("execute_reply", {"status": "ok", "execution_count": 1}, _REQUEST, None, ()),
        ("status", {"execution_state": "busy"}, _REQUEST, "sub", ()),
        ("comm_msg", {"comm_id": "c", "data": {"x": [1, 2]}}, None, None, (b"\0" * 16,)),
        ("kernel_info_request", {}, None, None, ()),
    ]
    msg_type, content, parent, subshell_id, buffers = rng.choice(shapes)
    header = Header(
        msg_id=rng.randbytes(16).hex(),
        msg_type=msg_type,
        session="fuzz",
        date=_DATE,
        subshell_id=subshell_id,
    )
    m = Message(header=header, content=content, parent_header=parent, buffers=buffers)
    idents = [b"route"] if rng.random() < 0.5 else []
    return [bytes(f) for f in tx.serialize(m, idents)]


# --- mutations: each takes frames and returns new frames -----------------------------

_BAD_JSON_VALUES = [
    b"[]",
    b"1",
    b'"str"',
    b"null",
    b"true",
    b"1.5",
    b"",
    b"{",
    b"{}}",
    b'{"a":}',
    b"\xff\xfe\xfd",
    b'"\\ud800"',
    b'{"a":"\xc3\x28"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b"[" * 1000 + b"]" * 1000,
    b'{"a":' + b"[" * 1100 + b"]" * 1100 + b"}",
    b"NaN",
    b'{"a":NaN}',
    b"\x00",
    b'{"a":1}garbage',
]

_BAD_HEADER_FIELDS: list[tuple[str, Any]] = [
    ("msg_id", 1),
    ("msg_id", None),
    ("msg_id", ""),
    ("msg_id", ["x"]),
    ("msg_type", {}),
    ("msg_type", ""),
    ("msg_type", 3.5),
    ("session", 7),
    ("username", None),
    ("date", 20240101),
    ("date", ["2024"]),
    ("version", 5.3),
    ("subshell_id", 12),
    ("subshell_id", {"a": 1}),
    ("subshell_id", None),
    ("extra_key", {"deep": [1, 2]}),
]


def _json_index(frames: Frames, rng: random.Random) -> int | None:
    try:
        i = next(i for i, f in enumerate(frames) if f == DELIMITER)
    except StopIteration:
        return None
    candidates = [j for j in range(i + 2, min(i + 6, len(frames)))]
    return rng.choice(candidates) if candidates else None


def m_truncate(frames: Frames, rng: random.Random) -> Frames:
    return frames[: rng.randrange(len(frames))]


def m_drop(frames: Frames, rng: random.Random) -> Frames:
    i = rng.randrange(len(frames))
    return frames[:i] + frames[i + 1 :]


def m_extra(frames: Frames, rng: random.Random) -> Frames:
    i = rng.randrange(len(frames) + 1)
    extra = rng.choice([b"", b"{}", DELIMITER, rng.randbytes(rng.randrange(64)), b"x" * 100])
    return [*frames[:i], extra, *frames[i:]]


def m_no_delimiter(frames: Frames, rng: random.Random) -> Frames:
    return [f for f in frames if f != DELIMITER]


def m_delimiter_bytes(frames: Frames, rng: random.Random) -> Frames:
    repl = rng.choice([b"<IDS|MSG", b"<ids|msg>", b"<IDS|MSG> ", b"", b"\x00" * 9])
    return [repl if f == DELIMITER else f for f in frames]


def m_bad_json(frames: Frames, rng: random.Random) -> Frames:
    j = _json_index(frames, rng)
    if j is None:
        return frames
    out = list(frames)
    out[j] = rng.choice(_BAD_JSON_VALUES)
    return out


def m_header_field(frames: Frames, rng: random.Random) -> Frames:
    j = _json_index(frames, rng)
    if j is None:
        return frames
    try:
        obj = orjson.loads(frames[j])
    except orjson.JSONDecodeError:
        return frames
    if not isinstance(obj, dict):
        return frames
    if not obj:  # an empty parent header: make it a partial one
        obj = {"msg_id": "p"}
    key, value = rng.choice(_BAD_HEADER_FIELDS)
    obj[key] = value
    if rng.random() < 0.3:
        obj.pop(rng.choice(["msg_id", "msg_type", "session", "date"]), None)
    out = list(frames)
    out[j] = orjson.dumps(obj)
    return out


def m_signature(frames: Frames, rng: random.Random) -> Frames:
    try:
        i = next(i for i, f in enumerate(frames) if f == DELIMITER)
    except StopIteration:
        return frames
    if i + 1 >= len(frames):
        return frames
    sig = bytes(frames[i + 1])
    choice = rng.randrange(6)
    if choice == 0:
        new = b"0" * (1 << 20)
    elif choice == 1:
        new = b""
    elif choice == 2:
        new = sig[:-1]
    elif choice == 3:
        new = sig.upper()
    elif choice == 4:
        new = rng.randbytes(len(sig))
    else:
        new = sig + b"0"
    out = list(frames)
    out[i + 1] = new
    return out


def m_flip(frames: Frames, rng: random.Random) -> Frames:
    i = rng.randrange(len(frames))
    data = bytearray(frames[i])
    if not data:
        return frames
    k = rng.randrange(len(data))
    op = rng.randrange(3)
    if op == 0:
        data[k] ^= 1 << rng.randrange(8)
    elif op == 1:
        del data[k]
    else:
        data.insert(k, rng.randrange(256))
    out = list(frames)
    out[i] = bytes(data)
    return out


def m_types(frames: Frames, rng: random.Random) -> Frames:
    """Same bytes, other bytes-like types (as zero-copy receivers hand them over)."""
    kind = rng.choice([bytearray, memoryview])
    return [kind(f) if rng.random() < 0.5 else f for f in frames]


def m_swap(frames: Frames, rng: random.Random) -> Frames:
    if len(frames) < 2:
        return frames
    i, j = rng.sample(range(len(frames)), 2)
    out = list(frames)
    out[i], out[j] = out[j], out[i]
    return out


def m_empty(frames: Frames, rng: random.Random) -> Frames:
    return rng.choice([[], [DELIMITER], [b""], [DELIMITER, b""]])


MUTATIONS: list[Callable[[Frames, random.Random], Frames]] = [
    m_truncate,
    m_drop,
    m_extra,
    m_no_delimiter,
    m_delimiter_bytes,
    m_bad_json,
    m_bad_json,
    m_header_field,
    m_header_field,
    m_header_field,
    m_signature,
    m_flip,
    m_flip,
    m_types,
    m_swap,
    m_empty,
]


def corpus(n: int, seed: int = 0) -> Iterator[Frames]:
    """``n`` malformed (mostly) frame lists, the same ones for the same seed."""
    rng = random.Random(seed)
    tx = Session(KEY, signature_scheme=SCHEME, session_id="fuzz")
    for _ in range(n):
        frames = _valid_message(rng, tx)
        for _ in range(1 + (rng.random() < 0.3) + (rng.random() < 0.1)):
            if frames:
                frames = rng.choice(MUTATIONS)(frames, rng)
        if rng.random() < 0.5:
            frames = _sign(frames)
        yield frames


# --- independent type checks on what a session accepted ----------------------------


def _header_ok(h: Any, *, dates_parsed: bool = False) -> bool:
    if isinstance(h, Header):
        h = h.to_dict()
    if not isinstance(h, dict):
        return False
    for name in ("msg_id", "msg_type"):
        if not isinstance(h.get(name), str) or not h[name]:
            return False
    for name in ("session", "username", "version"):
        if not isinstance(h.get(name, ""), str):
            return False
    date = h.get("date", "")
    if not (isinstance(date, str) or (dates_parsed and hasattr(date, "isoformat"))):
        return False
    sub = h.get("subshell_id")
    return sub is None or isinstance(sub, str)


def kernelkit_result_ok(idents: Any, msg: Any) -> bool:
    return (
        isinstance(idents, list)
        and all(isinstance(i, bytes) for i in idents)
        and isinstance(msg, Message)
        and _header_ok(msg.header)
        and (msg.parent_header is None or _header_ok(msg.parent_header))
        and type(msg.content) is dict
        and type(msg.metadata) is dict
        and isinstance(msg.buffers, tuple)
        and all(isinstance(b, (bytes, bytearray, memoryview)) for b in msg.buffers)
    )


def jupyter_client_result_ok(msg: Any) -> bool:
    parent = msg.get("parent_header")
    return (
        isinstance(msg, dict)
        and _header_ok(msg.get("header"), dates_parsed=True)
        and isinstance(parent, dict)
        and (not parent or _header_ok(parent, dates_parsed=True))
        and isinstance(msg.get("content"), dict)
        and isinstance(msg.get("metadata"), dict)
    )


# --- runners --------------------------------------------------------------------------


def run_kernelkit(n: int, seed: int = 0) -> collections.Counter[str]:
    """Feed the corpus to kernelkit's Session; count the verdicts."""
    verdicts: collections.Counter[str] = collections.Counter()
    signed = Session(KEY, signature_scheme=SCHEME)
    unsigned = Session(b"", max_message_bytes=1 << 16)
    for k, frames in enumerate(corpus(n, seed)):
        rx = unsigned if k % 5 == 4 else signed
        try:
            idents, msg = rx.deserialize(frames)
        except RemoteProtocolError:
            verdicts["rejected"] += 1
        except Exception as exc:  # the point of the fuzz: anything else is a bug
            verdicts[f"crashed: {type(exc).__name__}"] += 1
        else:
            verdicts["accepted" if kernelkit_result_ok(idents, msg) else "wrong-typed"] += 1
    return verdicts


def run_jupyter_client(n: int, seed: int = 0) -> collections.Counter[str]:
    """The same corpus through jupyter_client's Session (a comparison, not a test)."""
    # Imported here so the CI fuzz test never loads the peer (the comparison is a script).
    from jupyter_client.session import Session as JCSession

    verdicts: collections.Counter[str] = collections.Counter()
    signed = JCSession(key=KEY, signature_scheme=SCHEME)
    unsigned = JCSession(key=b"")
    for k, frames in enumerate(corpus(n, seed)):
        rx = unsigned if k % 5 == 4 else signed
        try:
            _, rest = rx.feed_identities(frames)
            msg = rx.deserialize(rest)
        except ValueError:  # its own rejections (bad signature, duplicate, bad JSON)
            verdicts["rejected"] += 1
        except Exception as exc:
            verdicts[f"crashed: {type(exc).__name__}"] += 1
        else:
            verdicts["accepted" if jupyter_client_result_ok(msg) else "wrong-typed"] += 1
    return verdicts


def _report(name: str, verdicts: collections.Counter[str], n: int, seconds: float) -> None:
    print(f"{name}: {n} cases in {seconds:.1f} s")
    for verdict, count in sorted(verdicts.items(), key=lambda kv: -kv[1]):
        print(f"  {verdict:28} {count:7d}  {100 * count / n:6.2f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jupyter-client", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    kk = run_kernelkit(args.n, args.seed)
    _report("kernelkit", kk, args.n, time.perf_counter() - t0)
    if args.jupyter_client:
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        jc = run_jupyter_client(args.n, args.seed)
        _report("jupyter_client", jc, args.n, time.perf_counter() - t0)
    bad = sum(c for v, c in kk.items() if v not in ("rejected", "accepted"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
