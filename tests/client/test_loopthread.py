"""LoopThread: the one event-loop thread every blocking face drives."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator

import pytest

from kernelkit import ClientClosed, ManagerError
from kernelkit._loopthread import LoopThread


def test_run_returns_results_and_raises_errors() -> None:
    lt = LoopThread("kernelkit-test-run")
    assert lt.loop is None

    async def where() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert lt.run(where()) == "kernelkit-test-run"

    async def fail() -> None:
        raise LookupError("inside")

    with pytest.raises(LookupError, match="inside"):
        lt.run(fail())
    lt.close()
    assert lt.closed
    assert not any(t.name == "kernelkit-test-run" for t in threading.enumerate())


def test_closed_and_own_thread_use_raise_the_owners_error() -> None:
    lt = LoopThread("kernelkit-test-misuse", owner="the test object", error=ManagerError)
    errors: list[BaseException] = []

    async def nested() -> None:
        inner = asyncio.sleep(0)
        try:
            lt.run(inner)
        except ManagerError as exc:
            errors.append(exc)

    lt.run(nested())
    assert "own loop thread" in str(errors[0])
    assert "the test object" in str(errors[0])
    lt.close()
    coro = asyncio.sleep(0)
    with pytest.raises(ManagerError, match="the test object is closed"):
        lt.run(coro)
    assert coro.cr_frame is None  # closed, not left to warn "never awaited"
    with pytest.raises(ManagerError, match="closed"):
        lt.call_soon_threadsafe(print)


def test_call_runs_on_the_loop_or_directly() -> None:
    lt = LoopThread("kernelkit-test-call", error=ClientClosed)
    with pytest.raises(ClientClosed, match="not started"):
        lt.call_soon_threadsafe(print)
    # Not started: nothing else could run it, so it runs here.
    assert lt.call(threading.current_thread) is threading.current_thread()
    lt.start()
    assert lt.call(lambda: threading.current_thread().name) == "kernelkit-test-call"

    async def from_inside() -> str:
        # On the loop thread itself a call is direct (never a deadlock).
        return lt.call(lambda: threading.current_thread().name)

    assert lt.run(from_inside()) == "kernelkit-test-call"
    with pytest.raises(ZeroDivisionError):
        lt.call(lambda: 1 / 0)
    done = threading.Event()
    lt.call_soon_threadsafe(done.set)
    assert done.wait(5)
    lt.close()


def test_close_winds_down_on_its_own_thread_from_async_code() -> None:
    finalized: list[str] = []
    cancelled: list[bool] = []
    kept: list[AsyncIterator[int]] = []

    async def agen() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            finalized.append(threading.current_thread().name)

    async def start_things() -> None:
        gen = agen()
        await gen.__anext__()  # left suspended: shutdown_asyncgens finalizes it
        kept.append(gen)
        await asyncio.get_running_loop().run_in_executor(None, lambda: None)

        async def forever() -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        asyncio.get_running_loop().create_task(forever())

    lt = LoopThread("kernelkit-test-winddown")
    lt.run(start_things())
    loop = lt.loop
    assert loop is not None

    async def close_inside_a_loop() -> None:
        lt.close()

    asyncio.run(close_inside_a_loop())
    assert loop.is_closed()
    assert cancelled == [True]
    assert finalized == ["kernelkit-test-winddown"]


def test_keyboard_interrupt_while_waiting_cancels_the_coroutine() -> None:
    lt = LoopThread("kernelkit-test-interrupt")
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    # A real SIGINT to the main thread (interrupt_main would not wake a blocked wait).
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            lt.run(slow())
        assert cancelled.wait(5)
    finally:
        timer.join()
        lt.close()


def test_holders_keep_the_thread_until_released() -> None:
    lt = LoopThread("kernelkit-test-hold")
    lt.start()
    assert lt.hold()
    assert lt.hold()
    lt.close_when_released()
    assert not lt.closed
    lt.release()
    assert not lt.closed
    lt.release()
    assert lt.closed
    assert not lt.hold()  # closed: no new holder


def test_close_from_the_loop_thread_stops_it_without_waiting() -> None:
    lt = LoopThread("kernelkit-test-self-close")
    loop = lt.start()
    lt.call_soon_threadsafe(lt.close)
    # The loop thread winds itself down; wait for it (bounded).
    threads = [t for t in threading.enumerate() if t.name == "kernelkit-test-self-close"]
    for t in threads:
        t.join(5)
    assert lt.closed
    assert loop.is_closed()
