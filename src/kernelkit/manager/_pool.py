"""Warm kernels, ready before anyone asks: :class:`AsyncKernelPool`.

The pool keeps ``size`` kernels of each kernel type started *and ready* (a client is
connected and ``wait_for_ready`` is done), so :meth:`AsyncKernelPool.acquire` hands one out in
well under a millisecond and starts a replacement in the background.

Rules, in the order they are applied:

- A kernel is handed out once and never comes back: the caller owns it (a
  :class:`AsyncPooledKernel`: its manager and its ready client) and shuts it down; the pool
  forgets it. What user code sees is a fresh kernel, as if started for it.
- A pooled kernel that dies while it waits is dropped and replaced at once (its process
  exit is an event); at hand-out the process is checked again, so a dead kernel is never
  handed out.
- ``max_age``: a warm kernel older than that is recycled (stopped and replaced).
- ``max_total`` bounds the kernels the pool itself holds (ready plus starting; kernels
  handed out do not count). A caller asking for a type with no ready kernel waits for one
  (the pool starts it; to make room it stops an idle kernel of another type) up to its
  ``timeout``, then gets :class:`~kernelkit.PoolExhausted`. A kernel that becomes ready
  after its caller gave up stays in the pool if the type has room, else it is stopped:
  nothing leaks.
- A type whose kernels fail to start fails the oldest waiting caller with the error
  (:class:`~kernelkit.KernelStartError` or :class:`~kernelkit.KernelTimeout`), and its
  background refill backs off (1 s doubling up to 60 s).

One event loop: use a pool from the loop that first starts it. No thread, no polling: the
only timers are the ``max_age`` expiries and the refill back-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from types import TracebackType

from kernelkit._errors import KernelError, KernelTimeout, ManagerError, PoolExhausted
from kernelkit.client import AsyncKernelClient
from kernelkit.discovery import KernelFinder, KernelType
from kernelkit.manager._manager import AsyncKernelManager
from kernelkit.manager._pooled import AsyncPooledKernel, Key, Kind, PoolKernel, Warm, kind_key
from kernelkit.manager._start_new import not_ready_error
from kernelkit.manager._types import DEFAULT_SHUTDOWN_WAIT_TIME
from kernelkit.provisioning import KernelProvisionerFactory, SandboxChoice, check_sandbox_choice
from kernelkit.specs import KernelSpec

__all__ = ["AsyncKernelPool"]

log = logging.getLogger("kernelkit.manager")

_BACKOFF_FIRST = 1.0
_BACKOFF_MAX = 60.0


class AsyncKernelPool:
    """Keeps warm kernels of one or more types ready to hand out (asyncio).

    ``AsyncKernelPool("python3", size=2)`` keeps two ``python3`` kernels ready; more types with
    :meth:`set_size`. A kernel type is a kernelspec name, a kernel type id
    (``env/<env-id>/python3``, looked up with ``finder``), a
    :class:`~kernelkit.specs.KernelSpec` or a :class:`~kernelkit.discovery.KernelType`.
    ``max_total`` caps the kernels the pool holds
    (ready and starting), ``max_age`` (seconds) recycles warm kernels that waited that long,
    ``ready_timeout`` bounds one kernel's start until ready. Kernels start with ``env``,
    ``inherit_env`` and ``cwd`` as :meth:`AsyncKernelManager.start_kernel` has them (an
    environment's kernel gets exactly its activated environment, ``env`` on top); the
    manager options (``autorestart``, ``restart_limit``, ``shutdown_wait_time``,
    ``provisioner_factory``, ``finder``) are those of
    :class:`~kernelkit.manager.AsyncKernelManager` (``autorestart`` takes effect once a
    kernel is handed out: in the pool a dead kernel is replaced, not restarted).
    ``sandbox`` (True or the sandbox's options) starts every kernel in a sandbox
    (:class:`~kernelkit.provisioning.SandboxProvisioner`); like every pooled kernel, a
    sandboxed one is handed out once and never reused, and the pool refills behind it.

    Start filling with ``await pool.start()`` (returns once every type is full) or
    ``async with pool:`` (fills in the background); :meth:`acquire` a kernel;
    :meth:`aclose` shuts down every kernel still in the pool. See the module docstring for
    the rules.
    """

    def __init__(
        self,
        kernel_name: PoolKernel | None = None,
        *,
        size: int = 1,
        max_total: int | None = None,
        max_age: float | None = None,
        ready_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | None = None,
        autorestart: bool = True,
        restart_limit: int = 5,
        shutdown_wait_time: float = DEFAULT_SHUTDOWN_WAIT_TIME,
        provisioner_factory: KernelProvisionerFactory | None = None,
        finder: KernelFinder | None = None,
        sandbox: SandboxChoice = None,
    ) -> None:
        if max_total is not None and max_total < 1:
            raise ManagerError(f"max_total must be at least 1 (or None), not {max_total!r}")
        if max_age is not None and max_age <= 0:
            raise ManagerError(f"max_age must be positive seconds (or None), not {max_age!r}")
        if ready_timeout <= 0:
            raise ManagerError(f"ready_timeout must be positive seconds, not {ready_timeout!r}")
        self._max_total = max_total
        self._max_age = max_age
        self._ready_timeout = ready_timeout
        self._env = dict(env) if env is not None else None
        self._inherit_env = inherit_env
        self._cwd = cwd
        self._finder = finder
        self._autorestart = autorestart
        self._restart_limit = restart_limit
        self._shutdown_wait_time = shutdown_wait_time
        self._provisioner_factory = provisioner_factory
        self._sandbox = check_sandbox_choice(sandbox)
        self._kinds: dict[Key, Kind] = {}
        self._default: Kind | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._changed = asyncio.Event()
        self._failure_count = 0
        self._last_failure: Exception | None = None
        if kernel_name is not None:
            self.set_size(kernel_name, size)
            self._default = self._kind(kernel_name)
        elif size != 1:
            raise ManagerError("size needs a kernel_name; use set_size() for more kernel types")

    def __repr__(self) -> str:
        parts = [
            f"{k.label}: {len(k.warm)} ready, {k.starting} starting" for k in self._kinds.values()
        ]
        state = "closed" if self._closed else "open"
        return f"<AsyncKernelPool {state} ({'; '.join(parts) or 'empty'})>"

    # ------------------------------------------------------------------ configuration

    def _kind(self, kernel: PoolKernel) -> Kind:
        if not isinstance(kernel, (str, KernelSpec, KernelType)) or not kernel:
            raise ManagerError(
                "a pool's kernel type is a kernelspec name ('python3'), a kernel type id "
                f"('env/<env-id>/python3'), a KernelSpec or a KernelType, not {kernel!r}"
            )
        key = kind_key(kernel)
        kind = self._kinds.get(key)
        if kind is None:
            kind = Kind(key, kernel)
            self._kinds[key] = kind
        return kind

    def set_size(self, kernel_name: PoolKernel, size: int) -> None:
        """Keep ``size`` ready kernels of this type (0: none kept; acquire starts one).

        Takes effect at once in a started pool: missing kernels start, extra ones stop.

        Raises:
            ManagerError: ``size`` is negative, or the pool is closed.
        """
        if self._closed:
            raise ManagerError("the kernel pool is closed")
        if not isinstance(size, int) or size < 0:
            raise ManagerError(f"size must be an integer >= 0, not {size!r}")
        kind = self._kind(kernel_name)
        kind.size = size
        while len(kind.warm) > size:
            self._dispose(kind.warm.popleft())
        self._refill()

    def size(self, kernel_name: PoolKernel | None = None) -> int:
        """The target number of ready kernels of this type (default: the pool's type)."""
        return self._resolve(kernel_name).size

    def ready_count(self, kernel_name: PoolKernel | None = None) -> int:
        """How many kernels are ready to hand out: of one type, or (None) of all types."""
        if kernel_name is None:
            return sum(len(k.warm) for k in self._kinds.values())
        return len(self._resolve(kernel_name).warm)

    @property
    def total(self) -> int:
        """Kernels the pool holds now, ready or starting (those handed out not counted)."""
        return sum(len(k.warm) + k.starting for k in self._kinds.values())

    @property
    def closed(self) -> bool:
        return self._closed

    def _resolve(self, kernel_name: PoolKernel | None) -> Kind:
        if kernel_name is None:
            if self._default is None:
                raise ManagerError(
                    "this pool has no default kernel type: name one "
                    "(acquire('python3') or acquire(kernel_spec))"
                )
            return self._default
        return self._kind(kernel_name)

    # ------------------------------------------------------------------ filling

    async def start(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Start filling the pool; with ``wait``, return once every type is full.

        Raises:
            ManagerError: the pool is closed.
            KernelStartError, KernelTimeout, NoSuchKernel, KernelSpecError: a kernel
                failed to start while waiting (the pool keeps retrying with back-off).
            KernelTimeout: not full within ``timeout`` seconds.
        """
        if self._closed:
            raise ManagerError("the kernel pool is closed")
        self._started = True
        failures = self._failure_count
        self._refill()
        if not wait:
            return
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._failure_count != failures and self._last_failure is not None:
                raise self._last_failure
            if self._closed:
                raise ManagerError("the kernel pool was closed while filling")
            if all(len(k.warm) >= k.size for k in self._kinds.values()):
                return
            changed = self._changed
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise KernelTimeout(f"the kernel pool did not fill within {timeout:g} s: {self!r}")
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except asyncio.TimeoutError:
                continue

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _refill(self) -> None:
        """Start what is missing: first for waiting callers, then to fill each type."""
        if not self._started or self._closed:
            return
        kinds = sorted(self._kinds.values(), key=lambda k: not k.waiters)
        now = asyncio.get_running_loop().time()
        for kind in kinds:
            fill = kind.size if kind.retry_at <= now else 0
            missing = len(kind.waiters) + fill - len(kind.warm) - kind.starting
            while missing > 0:
                if self._max_total is not None and self.total >= self._max_total:
                    if not (kind.waiters and self._evict_for(kind)):
                        break
                    continue
                self._spawn(kind)
                missing -= 1

    def _evict_for(self, needy: Kind) -> bool:
        """Stop the oldest ready kernel of another type to make room; False if none."""
        for kind in sorted(self._kinds.values(), key=lambda k: len(k.warm) - k.size, reverse=True):
            if kind is not needy and kind.warm and not kind.waiters:
                warm = kind.warm.popleft()
                log.info("kernel pool: stopping a ready %s kernel to make room", kind.label)
                self._dispose(warm)
                return True
        return False

    def _spawn(self, kind: Kind) -> None:
        kind.starting += 1
        task = asyncio.get_running_loop().create_task(
            self._start_one(kind), name=f"kernelkit-pool-start-{kind.label}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_one(self, kind: Kind) -> None:
        km = AsyncKernelManager(
            kind.kernel_name,
            kernel_spec=kind.kernel_spec,
            kernel_type=kind.kernel_type,
            finder=self._finder,
            provisioner_factory=self._provisioner_factory,
            autorestart=False,  # in the pool a dead kernel is replaced, not restarted
            restart_limit=self._restart_limit,
            shutdown_wait_time=self._shutdown_wait_time,
            sandbox=self._sandbox,
        )
        kc: AsyncKernelClient | None = None
        try:
            await km.start_kernel(env=self._env, inherit_env=self._inherit_env, cwd=self._cwd)
            kc = km.client()
            await kc.start()
            await kc.wait_for_ready(timeout=self._ready_timeout)
        except BaseException as exc:
            kind.starting -= 1
            tail = km.output_tail()
            await _discard(km, kc)
            if not isinstance(exc, Exception):
                raise  # cancelled (the pool is closing)
            error = not_ready_error(
                exc, kernel_name=kind.label, timeout=self._ready_timeout, tail=tail
            )
            self._start_failed(kind, error if error is not None else exc)
            return
        kind.starting -= 1
        kind.failures = 0
        kind.retry_at = 0.0
        warm = Warm(kind, km, kc)
        if self._closed:
            self._dispose(warm)
            return
        warm.on_died = lambda error: self._died(warm, error)
        km.add_restart_callback(warm.on_died, "died")
        self._offer(warm)

    def _start_failed(self, kind: Kind, error: Exception) -> None:
        kind.failures += 1
        delay = min(_BACKOFF_FIRST * 2 ** (kind.failures - 1), _BACKOFF_MAX)
        loop = asyncio.get_running_loop()
        kind.retry_at = loop.time() + delay
        if kind.retry is not None:
            kind.retry.cancel()
        kind.retry = loop.call_later(delay, self._refill)
        log.warning(
            "kernel pool: a %s kernel failed to start (%s); refilling again in %g s",
            kind.label,
            error,
            delay,
        )
        self._failure_count += 1
        self._last_failure = error
        while kind.waiters:
            waiter = kind.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
                break
        self._notify()
        self._refill()

    def _offer(self, warm: Warm) -> None:
        """A kernel became ready: to the oldest waiting caller, else into the pool."""
        kind = warm.kind
        while kind.waiters:
            waiter = kind.waiters.popleft()
            if not waiter.done():
                waiter.set_result(warm)
                self._notify()
                return
        if len(kind.warm) >= kind.size:
            self._dispose(warm)  # its caller gave up and the type is full: stop it
        else:
            if self._max_age is not None:
                warm.expiry = asyncio.get_running_loop().call_later(
                    self._max_age, self._expire, warm
                )
            kind.warm.append(warm)
        self._notify()
        self._refill()  # a caller of another type may wait for room this kernel can give

    def _died(self, warm: Warm, error: KernelError) -> None:
        kind = warm.kind
        if warm in kind.warm:
            kind.warm.remove(warm)
            log.info("kernel pool: a ready %s kernel died (%s); replacing it", kind.label, error)
            self._dispose(warm, now=True)
            self._refill()

    def _expire(self, warm: Warm) -> None:
        kind = warm.kind
        if warm in kind.warm:
            kind.warm.remove(warm)
            log.info(
                "kernel pool: recycling a %s kernel older than %g s", kind.label, self._max_age
            )
            self._dispose(warm)
            self._refill()

    def _dispose(self, warm: Warm, *, now: bool = False) -> None:
        """Stop a kernel the pool held, in the background (collected by aclose)."""
        _forget(warm)
        task = asyncio.get_running_loop().create_task(
            _discard(warm.manager, warm.client, now=now), name="kernelkit-pool-stop"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ handing out

    async def acquire(
        self, kernel_name: PoolKernel | None = None, *, timeout: float | None = 60.0
    ) -> AsyncPooledKernel:
        """A ready kernel of this type (default: the pool's type), yours to keep.

        From the pool when one is ready (no waiting); else the pool starts one (making
        room by stopping a ready kernel of another type if ``max_total`` is reached) and
        this waits for it, up to ``timeout`` seconds (0: only a ready one; None: no limit).
        A replacement starts in the background. Starts the pool if it was not started.

        Raises:
            PoolExhausted: no kernel of that type was ready within ``timeout``.
            KernelStartError, KernelTimeout, NoSuchKernel, KernelSpecError: the kernel
                started for this call failed.
            ManagerError: the pool is closed (or closed while waiting).
        """
        if self._closed:
            raise ManagerError("the kernel pool is closed")
        kind = self._resolve(kernel_name)
        self._started = True
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            warm = kind.warm.popleft() if kind.warm else None
            if warm is None:
                if timeout is not None and timeout <= 0:
                    self._refill()
                    raise PoolExhausted(self._exhausted_message(kind, timeout))
                warm = await self._wait_for(kind, loop, deadline, timeout)
            pooled = await self._hand_out(warm)
            if pooled is not None:
                return pooled

    async def _wait_for(
        self,
        kind: Kind,
        loop: asyncio.AbstractEventLoop,
        deadline: float | None,
        timeout: float | None,
    ) -> Warm:
        waiter: asyncio.Future[Warm] = loop.create_future()
        kind.waiters.append(waiter)
        self._refill()
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            await asyncio.wait({waiter}, timeout=remaining)
        except BaseException:
            # Cancelled: a kernel that reached us meanwhile is still fresh: back it goes.
            self._withdraw(kind, waiter)
            raise
        if not waiter.done():
            self._withdraw(kind, waiter)
            raise PoolExhausted(self._exhausted_message(kind, timeout))
        return waiter.result()  # or the start failure

    def _withdraw(self, kind: Kind, waiter: asyncio.Future[Warm]) -> None:
        if waiter in kind.waiters:
            kind.waiters.remove(waiter)
        if waiter.done():
            if not waiter.cancelled() and waiter.exception() is None:
                self._offer(waiter.result())
        else:
            waiter.cancel()
        self._refill()

    def _exhausted_message(self, kind: Kind, timeout: float | None) -> str:
        limit = "no limit" if self._max_total is None else f"max_total {self._max_total}"
        return (
            f"no {kind.label!r} kernel was ready within {timeout:g} s (this type: "
            f"{len(kind.warm)} ready, {kind.starting} starting; the pool holds {self.total} "
            f"kernels, {limit}); wait longer, raise max_total, or keep more ready with "
            f"set_size({kind.label!r}, n)"
        )

    async def _hand_out(self, warm: Warm) -> AsyncPooledKernel | None:
        km, kc = warm.manager, warm.client
        if km.state != "running" or kc.closed or not await km.is_alive():
            log.info("kernel pool: a %s kernel was dead at hand-out; dropped", warm.kind.label)
            self._dispose(warm, now=True)
            self._refill()
            return None
        _forget(warm)
        km.autorestart = self._autorestart
        self._refill()  # the replacement
        return AsyncPooledKernel(km, kc)

    # ------------------------------------------------------------------ closing

    async def aclose(self, *, now: bool = False) -> None:
        """Shut down every kernel in the pool (in parallel) and stop filling.

        Kernels already handed out are not touched. Callers waiting in :meth:`acquire`
        get :class:`~kernelkit.ManagerError`. ``now``: no graceful shutdown.
        """
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        self._closing = loop.create_future()
        try:
            stopping = []
            for kind in self._kinds.values():
                if kind.retry is not None:
                    kind.retry.cancel()
                while kind.waiters:
                    waiter = kind.waiters.popleft()
                    if not waiter.done():
                        waiter.set_exception(
                            ManagerError("the kernel pool was closed while waiting for a kernel")
                        )
                while kind.warm:
                    warm = kind.warm.popleft()
                    _forget(warm)
                    stopping.append(_discard(warm.manager, warm.client, now=now))
            pending = list(self._tasks)
            for task in pending:
                if task.get_name().startswith("kernelkit-pool-start"):
                    task.cancel()
            results = await asyncio.gather(*stopping, *pending, return_exceptions=True)
            while self._tasks:  # stops scheduled while we waited
                results += await asyncio.gather(*self._tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    log.error("kernel pool: a kernel failed to shut down: %s", result)
            self._notify()
        finally:
            self._closing.set_result(None)

    async def __aenter__(self) -> AsyncKernelPool:
        await self.start(wait=False)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _forget(warm: Warm) -> None:
    """The pool lets go of ``warm``: no expiry, no death watch."""
    if warm.expiry is not None:
        warm.expiry.cancel()
        warm.expiry = None
    if warm.on_died is not None:
        warm.manager.remove_restart_callback(warm.on_died, "died")
        warm.on_died = None


async def _discard(
    km: AsyncKernelManager, kc: AsyncKernelClient | None, *, now: bool = True
) -> None:
    """Close the client and stop the kernel; errors are logged (nobody waits on them)."""
    try:
        if kc is not None:
            await kc.aclose()
        await km.shutdown_kernel(now=now)
    except KernelError as exc:
        log.error("kernel pool: stopping kernel %s failed: %s", km.kernel_id, exc)
