"""The asyncio and blocking faces are twins: same public names, same signatures.

Every public method and property of :class:`AsyncKernelClient` has a twin on
:class:`KernelClient` (and :class:`AsyncSubshell` on :class:`Subshell`) with the same
parameters, kinds, defaults and annotations, modulo async-ness and the names the two
faces spell differently (``aclose``/``close``, async/blocking stream and hook types).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from kernelkit.client import AsyncKernelClient, AsyncSubshell, KernelClient, Subshell

#: async name -> blocking name.
RENAMED = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}
#: Words of annotations the faces spell differently (async -> blocking).
TYPES = {
    "AsyncMessageStream": "MessageStream",
    "AsyncKernelClient": "KernelClient",
    "AsyncSubshell": "Subshell",
    "StdinHook": "BlockingStdinHook",
}
#: What only the blocking client has: its loop thread and the async client it drives.
BLOCKING_ONLY = {"async_client", "direct_io", "loop", "loop_thread", "from_async_client"}
#: Parameters only the blocking client's constructors take.
BLOCKING_PARAMS = {"loop_thread"}

PAIRS = [(AsyncKernelClient, KernelClient), (AsyncSubshell, Subshell)]


def _public(cls: type) -> dict[str, Any]:
    names = {n for n in dir(cls) if not n.startswith("_")}
    names |= {n for n in RENAMED if hasattr(cls, n)} | {
        n for n in RENAMED.values() if hasattr(cls, n)
    }
    return {n: inspect.getattr_static(cls, n) for n in names}


def _blocking_annotation(text: object) -> str:
    out = str(text)
    for word, twin in TYPES.items():
        out = re.sub(rf"\b{word}\b", twin, out)
    return out


def _signature(member: Any, *, blocking: bool) -> inspect.Signature:
    fn: Any = member.fget if isinstance(member, property) else member
    if isinstance(fn, (classmethod, staticmethod)):
        fn = fn.__func__
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.name not in BLOCKING_PARAMS]
    if not blocking:
        params = [p.replace(annotation=_blocking_annotation(p.annotation)) for p in params]
        ret = _blocking_annotation(sig.return_annotation)
        # The async context manager protocol returns None from __aexit__, bool|None is ok.
        return sig.replace(parameters=params, return_annotation=ret)
    return sig.replace(parameters=params, return_annotation=str(sig.return_annotation))


@pytest.mark.parametrize(("async_cls", "blocking_cls"), PAIRS, ids=lambda c: c.__name__)
def test_the_faces_have_the_same_public_names(async_cls: type, blocking_cls: type) -> None:
    async_names = {RENAMED.get(n, n) for n in _public(async_cls)}
    blocking_names = set(_public(blocking_cls)) - BLOCKING_ONLY
    assert async_names == blocking_names


@pytest.mark.parametrize(("async_cls", "blocking_cls"), PAIRS, ids=lambda c: c.__name__)
def test_the_faces_have_the_same_signatures(async_cls: type, blocking_cls: type) -> None:
    blocking = _public(blocking_cls)
    checked = 0
    for name, member in _public(async_cls).items():
        twin = blocking[RENAMED.get(name, name)]
        assert isinstance(member, property) == isinstance(twin, property), name
        if name in ("__aexit__",):  # (*exc) vs (exc_type, exc, tb): both take the three
            continue
        assert not inspect.iscoroutinefunction(getattr(twin, "__func__", twin)), name
        expected = _signature(member, blocking=False)
        got = _signature(twin, blocking=True)
        assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == [
            (p.name, p.kind, p.default) for p in expected.parameters.values()
        ], name
        assert [str(p.annotation) for p in got.parameters.values()] == [
            str(p.annotation) for p in expected.parameters.values()
        ], name
        assert got.return_annotation == expected.return_annotation, name
        checked += 1
    assert checked >= (20 if async_cls is AsyncKernelClient else 10)


def test_blocking_constructors_take_a_loop_thread_last() -> None:
    for name in ("__init__", "from_connection_info", "from_connection_file"):
        params = list(inspect.signature(getattr(KernelClient, name)).parameters)
        assert params[-1] == "loop_thread", name


def test_subshells_are_views_with_the_client_request_methods() -> None:
    # One set of request methods per face, shared by the client and its subshells.
    for client_cls, sub_cls in ((AsyncKernelClient, AsyncSubshell), (KernelClient, Subshell)):
        for name in ("execute", "execute_interactive", "kernel_info", "complete", "send_request"):
            assert inspect.getattr_static(client_cls, name) is inspect.getattr_static(
                sub_cls, name
            ), (client_cls.__name__, name)
