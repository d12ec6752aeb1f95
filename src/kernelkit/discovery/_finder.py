"""KernelFinder: every provider's kernel types, on time, once each."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import fields, replace
from typing import cast

from kernelkit._errors import DiscoveryError
from kernelkit.discovery._duplicates import resolve_duplicates
from kernelkit.discovery._entrypoints import EntryPointRef, load_entry_point, read_entry_points
from kernelkit.discovery._results import FindResult, KernelChange
from kernelkit.discovery._types import (
    DiscoveryProblem,
    KernelProvider,
    KernelType,
    LaunchPlan,
    plan_launch,
)

__all__ = [
    "BUILTIN_PROVIDERS",
    "DEFAULT_TIME_LIMIT",
    "ENTRY_POINT_GROUP",
    "KernelFinder",
]

#: The entry point group providers are registered under.
ENTRY_POINT_GROUP = "kernelkit.providers"
#: Built-in providers, in the order they win duplicates; others follow by name.
BUILTIN_PROVIDERS = ("spec", "env")
#: Default time limit for one provider to list its kernels, in seconds.
DEFAULT_TIME_LIMIT = 5.0
#: Seconds a provider's listing runs alone before the next provider's starts beside it.
_STAGGER = 0.25
#: A path modified this recently may change again within the same clock tick: a listing
#: that read it is not cached (as git treats "racily clean" index entries).
_RACY_NS = 2_000_000_000


def _stat_key(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def _fingerprint(paths: Sequence[str], *, since_ns: int | None = None) -> tuple[int, bool]:
    """(a digest of the ``stat`` of ``paths``, whether any was modified after
    ``since_ns`` minus the clock's granularity, i.e. maybe after the listing began: such
    a listing is not trusted).

    The digest is the hash of every (mtime, ctime, size, inode): it is compared in this
    process only, and one int per listing keeps a thousand stat tuples from living as
    long as the cache. ctime cannot be set back, so a change written with an old mtime
    (``touch -d``, ``tar x``) still changes it.
    """
    racy_after = None if since_ns is None else since_ns - _RACY_NS
    racy = False
    keys = []
    for path in paths:
        key = _stat_key(path)
        if racy_after is not None and key is not None and key[0] > racy_after:
            racy = True
        keys.append(key)
    return hash(tuple(keys)), racy


_serials = itertools.count()


class _Job:
    """One provider listing running in a worker thread."""

    def __init__(self) -> None:
        self.serial = next(_serials)
        self.done = threading.Event()
        self.kernels: list[KernelType] = []
        self.problems: list[DiscoveryProblem] = []
        #: the paths the listing read, and their digest (None: cannot be cached)
        self.fingerprint: tuple[tuple[str, ...], int] | None = None
        self.started = time.monotonic()
        self.started_ns = time.time_ns()
        #: a find() gave up waiting for it (over the time limit): hung until it answers
        self.given_up = False


class _Slot:
    """A provider: how to get it, the instance once loaded, and its cached listing."""

    def __init__(
        self,
        name: str,
        *,
        provider: KernelProvider | None = None,
        entry_point: EntryPointRef | None = None,
    ) -> None:
        self.name = name
        self.provider = provider
        self.entry_point = entry_point
        self.running: _Job | None = None
        self.cached: _Job | None = None

    def load(self) -> KernelProvider:
        if self.provider is None:
            assert self.entry_point is not None
            loaded = load_entry_point(self.entry_point[1])
            instance = loaded() if isinstance(loaded, type) else loaded
            # a plugin need not subclass KernelProvider: what it lists is checked instead
            self.provider = cast(KernelProvider, instance)
        return self.provider

    def still_valid(self) -> bool:
        cached = self.cached
        if cached is None or cached.fingerprint is None:
            return False
        paths, digest = cached.fingerprint
        return _fingerprint(paths)[0] == digest


class _Chain:
    """Provider listings run one after another in worker threads.

    A worker whose listing is done runs the next one not yet started, in the same
    thread: handing each one over through the calling thread cost two scheduler
    wake-ups per provider (a few milliseconds of a command-line listing on a busy
    machine). The calling thread starts a listing in a thread of its own only when the
    one before it is slow (:meth:`start`); each listing starts once.
    """

    def __init__(self, jobs: list[tuple[_Slot, _Job]]) -> None:
        self._jobs = jobs
        self._claimed = [False] * len(jobs)
        self._lock = threading.Lock()

    def _claim(self, index: int) -> bool:
        # under self._lock
        if self._claimed[index]:
            return False
        self._claimed[index] = True
        self._jobs[index][1].started = time.monotonic()
        return True

    def start(self, index: int) -> None:
        """Start listing ``index`` in a new thread, unless a worker already has."""
        with self._lock:
            if not self._claim(index):
                return
        threading.Thread(
            target=self._run,
            args=(index,),
            name=f"kernelkit-provider-{self._jobs[index][0].name}",
            daemon=True,  # a hung provider must not keep the process alive
        ).start()

    def _run(self, index: int | None) -> None:
        while index is not None:
            _run_provider(*self._jobs[index])
            with self._lock:
                index = next((i for i in range(index + 1, len(self._jobs)) if self._claim(i)), None)


_KERNEL_TYPE_FIELDS = tuple(f.name for f in fields(KernelType) if f.init)


def _stamped(item: KernelType, provider: str) -> KernelType:
    """``replace(item, provider=provider)`` at a third of the cost (field names looked up
    once): it runs once per kernel of every listing."""
    if item.provider == provider:
        return item
    values = {name: getattr(item, name) for name in _KERNEL_TYPE_FIELDS}
    values["provider"] = provider
    return KernelType(**values)


def _run_provider(slot: _Slot, job: _Job) -> None:
    """Body of a worker thread: load the provider, list, validate, fingerprint."""
    name = slot.name
    try:
        try:
            provider = slot.load()
        except Exception as exc:
            where = slot.entry_point[1] if slot.entry_point is not None else name
            job.problems.append(
                DiscoveryProblem(
                    name, f"failed to load ({where}): {type(exc).__name__}: {exc}", where
                )
            )
            return
        try:
            listed = list(provider.find_kernels())
            watched_method = getattr(provider, "watched_paths", None)
            watched = watched_method() if watched_method is not None else None
        except Exception as exc:
            job.problems.append(
                DiscoveryProblem(
                    name, f"raised {type(exc).__name__}: {exc}", type(provider).__qualname__
                )
            )
            return
        seen: set[str] = set()
        for item in listed:
            if not isinstance(item, KernelType):
                job.problems.append(
                    DiscoveryProblem(name, f"yielded a {type(item).__name__}, not a KernelType")
                )
                continue
            if item.name in seen:
                job.problems.append(
                    DiscoveryProblem(name, f"yielded two kernel types named {item.name!r}")
                )
                continue
            seen.add(item.name)
            job.kernels.append(_stamped(item, name))
        if watched is not None:
            paths = tuple(dict.fromkeys(os.fspath(p) for p in watched))
            digest, racy = _fingerprint(paths, since_ns=job.started_ns)
            job.fingerprint = None if racy else (paths, digest)
    except BaseException as exc:  # a thread must not die silently: report anything
        job.problems.append(DiscoveryProblem(name, f"crashed: {type(exc).__name__}: {exc}"))
    finally:
        job.done.set()


class KernelFinder:
    """Kernel types from every provider, each listed in a worker thread under a time limit.

    - Providers come from the ``kernelkit.providers`` entry point group (the built-in
      ``spec`` and ``env`` register there too), or are given as a mapping name -> provider.
    - Isolation: a provider that fails to load, raises, returns junk or takes longer than
      ``time_limit`` seconds is reported in :attr:`FindResult.problems`; the others are
      listed on time. A hung provider is not started again while its thread still runs.
      Threads start one after another while each listing is quick (two at once fight
      over the GIL); a slow one has the next started beside it after a quarter second.
    - Duplicates across providers are resolved by :func:`resolve_duplicates`.
    - Cache: a provider's listing is reused while the ``stat`` of every path it read
      (:meth:`KernelProvider.watched_paths`) is unchanged; :meth:`refresh` forgets it.
    - Ordering: built-in providers first (``spec``, ``env``), then the others by name.
    """

    def __init__(
        self,
        providers: Mapping[str, KernelProvider] | None = None,
        *,
        time_limit: float = DEFAULT_TIME_LIMIT,
        entry_point_group: str = ENTRY_POINT_GROUP,
    ) -> None:
        self.time_limit = time_limit
        self._group = entry_point_group
        self._lock = threading.Lock()
        self._slots: list[_Slot] | None = None
        self._last: tuple[tuple[tuple[str, int], ...], FindResult] | None = None
        if providers is not None:
            self._slots = self._ordered(
                [_Slot(name, provider=provider) for name, provider in providers.items()]
            )

    @staticmethod
    def _ordered(slots: list[_Slot]) -> list[_Slot]:
        def rank(slot: _Slot) -> tuple[int, str]:
            if slot.name in BUILTIN_PROVIDERS:
                return BUILTIN_PROVIDERS.index(slot.name), ""
            return len(BUILTIN_PROVIDERS), slot.name

        return sorted(slots, key=rank)

    def _get_slots(self) -> list[_Slot]:
        with self._lock:
            if self._slots is None:
                self._slots = self._ordered(
                    [_Slot(ref[0], entry_point=ref) for ref in read_entry_points(self._group)]
                )
            return self._slots

    @property
    def provider_names(self) -> list[str]:
        """The providers, in order."""
        return [slot.name for slot in self._get_slots()]

    def provider(self, name: str) -> KernelProvider:
        """The provider registered as ``name`` (loaded now if it was not yet).

        Raises:
            DiscoveryError: no provider has that name, or it fails to load.
        """
        for slot in self._get_slots():
            if slot.name == name:
                try:
                    return slot.load()
                except Exception as exc:
                    raise DiscoveryError(
                        f"kernel provider {name!r} failed to load: {type(exc).__name__}: {exc}"
                    ) from exc
        installed = ", ".join(self.provider_names) or "none"
        raise DiscoveryError(f"no kernel provider named {name!r}; installed: {installed}")

    def find(
        self, *, refresh: bool = False, providers: Collection[str] | None = None
    ) -> FindResult:
        """List every kernel type now (cached listings reused unless ``refresh``).

        ``providers`` lists only the providers with those names (None: all). Duplicates
        are resolved among what is listed.

        Never raises because of a provider; returns within about ``time_limit`` seconds.
        """
        slots = self._get_slots()
        if providers is not None:
            slots = [slot for slot in slots if slot.name in providers]
        # per provider, in order: the job to wait for (None: a hung one, not waited for
        # again) and its stale kernels, if any
        plan: list[tuple[_Slot, _Job | None]] = []
        starting: list[tuple[_Slot, _Job]] = []  # listings to run now, in order
        problems: list[DiscoveryProblem] = []
        with self._lock:
            for slot in slots:
                if slot.running is not None:
                    running = slot.running
                    if (
                        not running.done.is_set()
                        and not running.given_up
                        and time.monotonic() - running.started < self.time_limit
                    ):
                        # Another call (another thread) started this listing moments ago:
                        # wait for the same one, within its own time limit.
                        plan.append((slot, running))
                        continue
                    if not running.done.is_set():
                        # Busy past its limit since an earlier call: do not wait for it
                        # again, nor start a second thread; show its last good listing.
                        waited = time.monotonic() - running.started
                        problems.append(
                            DiscoveryProblem(
                                slot.name,
                                f"still listing after {waited:.1f} s (over the "
                                f"{self.time_limit:g} s limit; hung?)"
                                + ("; showing its previous listing" if slot.cached else ""),
                            )
                        )
                        plan.append((slot, None))
                        continue
                    slot.cached = slot.running
                    slot.running = None
                if not refresh and slot.still_valid():
                    plan.append((slot, slot.cached))
                    continue
                new_job = _Job()
                slot.running = new_job
                plan.append((slot, new_job))
                starting.append((slot, new_job))
        t_start = time.monotonic()
        deadline = t_start + self.time_limit
        stagger = min(_STAGGER, self.time_limit / 4)  # a slow one costs the others little
        # One at a time while they are quick: two listing threads at once pass the GIL
        # back and forth at every system call (a thousand kernelspecs took a third
        # longer). A worker that is done runs the next listing itself (_Chain); one that
        # is slow gets company after `stagger`, in a thread of its own.
        chain = _Chain(starting)
        for index in range(len(starting)):
            if index:
                starting[index - 1][1].done.wait(stagger)
            chain.start(index)
        kernels: list[KernelType] = []
        for slot, job in plan:
            if job is None:
                if slot.cached is not None:
                    kernels.extend(slot.cached.kernels)
                continue
            # A listing another call started gets its own limit, not a fresh one.
            until = (
                min(deadline, job.started + self.time_limit) if job.started < t_start else deadline
            )
            if not job.done.wait(max(0.0, until - time.monotonic())):
                # Its thread started a moment after t_start: without this, a call right
                # after would see it as "started less than time_limit ago" and wait again.
                job.given_up = True
                waited = time.monotonic() - job.started
                problems.append(
                    DiscoveryProblem(
                        slot.name,
                        f"did not answer within {self.time_limit:g} s (running for "
                        f"{waited:.1f} s); its kernels are left out",
                    )
                )
                continue
            with self._lock:
                if slot.running is job:
                    slot.running = None
                    slot.cached = job
            kernels.extend(job.kernels)
            problems.extend(job.problems)
        # The same listings as last time (every provider's cache still valid): the same
        # result, without resolving duplicates again (a stat per kernelspec).
        key = tuple((slot.name, job.serial if job is not None else -1) for slot, job in plan)
        last = self._last
        if not problems and last is not None and last[0] == key:
            return last[1]
        resolved = resolve_duplicates(kernels)
        by_id: dict[str, KernelType] = {}
        for kernel in resolved:
            by_id.setdefault(kernel.id, kernel)
            for alias in kernel.aliases:
                by_id.setdefault(alias, kernel)
        result = FindResult(tuple(resolved), tuple(problems), by_id)
        self._last = None if problems else (key, result)
        return result

    def refresh(self) -> FindResult:
        """Forget every cached listing and list again."""
        return self.find(refresh=True)

    def get(self, type_id: str) -> KernelType:
        """The kernel type with this id (see :meth:`FindResult.get`).

        A kernelspec (``spec/<name>``, or a bare name that is one) is found by listing
        the kernelspec provider alone: the others (environments, plugins, a hung one)
        are asked only when it is not a kernelspec.

        Raises:
            NoSuchKernel: no kernel type has that id.
        """
        head, slash, name = type_id.partition("/")
        spec_name = name if head == "spec" else (type_id if not slash else None)
        if spec_name is not None and "spec" in self.provider_names:
            # Built-in kernelspecs come first in provider order: no other provider's
            # kernel can take an id of theirs, so this answer is the full listing's.
            found = self.find(providers=("spec",))._by_id.get(f"spec/{spec_name}")
            if found is not None:
                return found
        return self.find().get(type_id)

    def prepare(
        self, kernel: str | KernelType, *, env: Mapping[str, str] | None = None
    ) -> LaunchPlan:
        """What launching a kernel type takes (see :class:`LaunchPlan`): asked of the
        provider that listed it (:meth:`KernelProvider.prepare`), which names the
        provisioner and its configuration and activates the kernel's environment.

        ``kernel`` is a :class:`KernelType` (from :meth:`find`) or any id or alias the
        listing shows (``spec/python3``, ``env/<env-id>/python3``, a plugin's
        ``<provider>/<name>``) or a bare kernelspec name (see :meth:`FindResult.get`).
        A kernel type not listed by a provider (empty ``provider``) gets the default
        plan. ``env`` goes on top of the plan's environment. Every manager calls this
        when it starts a kernel named by id or type (``AsyncKernelManager("env/...")``).

        Blocking: activating a conda prefix may run its activation scripts (once; the
        result is cached). From async code: ``await asyncio.to_thread(finder.prepare, id)``.

        Raises:
            NoSuchKernel: no kernel type has that id (the error lists the ids).
            KernelSpecError: the kernel type is broken (the message lists its problems).
            DiscoveryError: it cannot be launched (no kernelspec, its provider is not
                installed, or its provider's plan is not a LaunchPlan).
            ProvisioningError: the spec's ``metadata.kernel_provisioner`` is malformed.
            EnvironmentActivationError: its environment could not be activated.
        """
        if isinstance(kernel, KernelType):
            kernel_type = kernel
        elif isinstance(kernel, str) and kernel:
            kernel_type = self.get(kernel)
        else:
            raise DiscoveryError(
                f"a kernel to prepare is a kernel type id (such as 'spec/python3') or a "
                f"KernelType, not {kernel!r}"
            )
        prepare = plan_launch
        if kernel_type.provider:
            provider = self.provider(kernel_type.provider)
            # a duck-typed provider without prepare() gets the default plan
            prepare = getattr(provider, "prepare", plan_launch)
        plan = prepare(kernel_type)
        if not isinstance(plan, LaunchPlan):
            raise DiscoveryError(
                f"kernel provider {kernel_type.provider!r} prepared a "
                f"{type(plan).__name__}, not a LaunchPlan, for {kernel_type.id}"
            )
        if not isinstance(plan.provisioner_name, str) or not plan.provisioner_name:
            raise DiscoveryError(
                f"kernel provider {kernel_type.provider!r} prepared a plan for "
                f"{kernel_type.id} naming no provisioner ({plan.provisioner_name!r}); "
                "a LaunchPlan's provisioner_name must be an installed provisioner's name"
            )
        if env:
            plan = replace(plan, env={**plan.env, **env})
        return plan

    async def watch(self, *, interval: float = 2.0) -> AsyncIterator[KernelChange]:
        """Yield a :class:`KernelChange` whenever a kernel type appears, changes or
        vanishes (kernelspec directories, environments, their interpreters).

        A bounded stat-compare loop: every ``interval`` seconds the finder re-checks the
        paths each provider read (a few hundred ``stat`` calls) and lists again only the
        providers whose paths changed. This is a watcher, not a hot path; there is no
        portable file-change notification for "an environment appeared somewhere".
        """
        # Imported here for import time, not to dodge a cycle: the watcher needs asyncio,
        # which a plain listing (every command line's hot path) never does.
        from kernelkit.discovery._watch import watch_changes

        async for change in watch_changes(self.find, interval=interval):
            yield change
