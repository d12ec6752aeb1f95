"""KernelFinder: every provider's kernel types, on time, once each."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Literal, cast

from kernelkit._errors import DiscoveryError, NoSuchKernel
from kernelkit.discovery._entrypoints import EntryPointRef, load_entry_point, read_entry_points
from kernelkit.discovery._providers import runs_ipykernel
from kernelkit.discovery._types import (
    ORIGIN_INTERPRETER,
    ORIGIN_KERNELSPEC,
    DiscoveryProblem,
    KernelHandle,
    KernelProvider,
    KernelType,
    LaunchOptions,
    LaunchPlan,
)
from kernelkit.specs import is_bare_python

if TYPE_CHECKING:
    from kernelkit.discovery._blocking import LaunchedKernel

__all__ = [
    "BUILTIN_PROVIDERS",
    "ENTRY_POINT_GROUP",
    "FindResult",
    "KernelChange",
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


@dataclass(frozen=True, slots=True)
class FindResult:
    """One listing: kernel types (broken ones included, each with ``problems``) in
    provider order, and providers that failed as a whole."""

    kernels: tuple[KernelType, ...]
    problems: tuple[DiscoveryProblem, ...] = ()
    _by_id: Mapping[str, KernelType] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self) -> Iterator[KernelType]:
        return iter(self.kernels)

    def __len__(self) -> int:
        return len(self.kernels)

    @property
    def healthy(self) -> tuple[KernelType, ...]:
        """The kernel types with no known problem."""
        return tuple(k for k in self.kernels if not k.problems)

    @property
    def broken(self) -> tuple[KernelType, ...]:
        """The kernel types with problems."""
        return tuple(k for k in self.kernels if k.problems)

    def get(self, type_id: str) -> KernelType:
        """The kernel type with this id or alias; a bare name (``python3``) matches
        ``spec/<name>`` first, then the only type with that name.

        Raises:
            NoSuchKernel: nothing matches (the error lists the ids).
        """
        found = self._by_id.get(type_id)
        if found is None and "/" not in type_id:
            found = self._by_id.get(f"spec/{type_id}")
            if found is None:
                named = [k for k in self.kernels if k.name.rsplit("/", 1)[-1] == type_id]
                found = named[0] if len(named) == 1 else None
        if found is None:
            raise NoSuchKernel(type_id, available=[k.id for k in self.kernels])
        return found


@dataclass(frozen=True, slots=True)
class KernelChange:
    """A change seen by :meth:`KernelFinder.watch`: a kernel type ``added``,
    ``changed`` (anything about it, health included) or ``removed``."""

    kind: Literal["added", "changed", "removed"]
    kernel: KernelType


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


_Identity = tuple[int, int] | str


class _Identities:
    """What a path is on disk: (device, inode) of what it points to, cached per path.
    One ``stat`` instead of a ``realpath`` walk, and it sees through symlinks and bind
    mounts alike; a path that cannot be stat'ed stands for itself."""

    def __init__(self) -> None:
        self._seen: dict[str, _Identity] = {}

    def __call__(self, path: str | os.PathLike[str]) -> _Identity:
        text = os.fspath(path)
        found = self._seen.get(text)
        if found is None:
            try:
                st = os.stat(text)
                found = (st.st_dev, st.st_ino)
            except OSError:
                found = text
            self._seen[text] = found
        return found


_BARE = "bare python"


def _ipykernel_prefix(
    kernel: KernelType, identity: _Identities, programs: dict[str, _Identity | None]
) -> _Identity | None:
    """The environment whose interpreter this ipykernel spec runs, or None.
    ``programs`` remembers what each argv[0] means (most specs share a few)."""
    spec = kernel.spec
    if spec is None or not spec.argv or not runs_ipykernel(spec):
        return None
    first = spec.argv[0]
    if first not in programs:
        programs[first] = _program_prefix(first, identity)
    found = programs[first]
    if found == _BARE:
        # runs with the interpreter of the environment holding the spec, if any
        env = kernel.environment
        return identity(env.prefix) if env is not None else None
    return found


def _program_prefix(first: str, identity: _Identities) -> _Identity | None:
    if is_bare_python(first):
        return _BARE
    bin_dir = os.path.dirname(first)
    if not os.path.isabs(first) or os.path.basename(bin_dir) not in ("bin", "Scripts"):
        return None
    return identity(os.path.dirname(bin_dir))


def _contents(kernel: KernelType) -> tuple[str, ...] | None:
    """What a kernelspec's kernel.json says that matters here (None: no spec to compare)."""
    spec = kernel.spec
    if spec is None or kernel.origin != ORIGIN_KERNELSPEC:
        return None
    return (spec.display_name, spec.language, *spec.argv)


def resolve_duplicates(kernels: Sequence[KernelType]) -> list[KernelType]:
    """Drop kernel types that are the same kernel reached another way.

    The rule (``kernels`` is in provider order: spec, env, then others by name):

    1. Two kernelspecs whose directories are the same directory on disk (same device and
       inode: reached through a symlink, a bind mount or two search paths) are one
       kernel; the first listed stays.
    2. An environment's interpreter offered as a kernel (origin ``interpreter``) is
       dropped when a listed kernelspec already starts ipykernel with that
       environment's interpreter (``<prefix>/bin/python...``, or a bare ``python`` in a
       spec that lives in that environment).

    The kernel that stays records the dropped ids in ``aliases``.

    One directory reached twice holds one kernel.json, so only kernelspecs with the same
    contents (argv, display name, language) can be one: only those are ``stat``-ed.
    """
    identity = _Identities()
    programs: dict[str, _Identity | None] = {}
    contents: dict[object, int] = {}
    for kernel in kernels:
        key = _contents(kernel)
        contents[key] = contents.get(key, 0) + 1
    kept: list[KernelType] = []
    by_dir: dict[object, int] = {}
    by_python: dict[_Identity, int] = {}
    aliases: dict[int, list[str]] = {}
    interpreters: list[tuple[KernelType, _Identity]] = []
    for kernel in kernels:
        if kernel.origin == ORIGIN_INTERPRETER and kernel.environment is not None:
            interpreters.append((kernel, identity(kernel.environment.prefix)))
            continue
        if kernel.origin == ORIGIN_KERNELSPEC and kernel.source is not None:
            key = _contents(kernel)
            same = identity(kernel.source) if key is None or contents[key] > 1 else key
            if same in by_dir:
                aliases.setdefault(by_dir[same], []).append(kernel.id)
                continue
            by_dir[same] = len(kept)
            prefix = _ipykernel_prefix(kernel, identity, programs)
            if prefix is not None:
                by_python.setdefault(prefix, len(kept))
        kept.append(kernel)
    for kernel, prefix in interpreters:
        index = by_python.get(prefix)
        if index is not None:
            aliases.setdefault(index, []).append(kernel.id)
        else:
            kept.append(kernel)
    for index, extra in aliases.items():
        kept[index] = replace(kept[index], aliases=(*kept[index].aliases, *extra))
    return kept


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
                    if not slot.running.done.is_set():
                        # Still busy since an earlier call: do not wait for it again, and
                        # do not start a second thread; show its last good listing, if any.
                        waited = time.monotonic() - slot.running.started
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
        deadline = time.monotonic() + self.time_limit
        stagger = min(_STAGGER, self.time_limit / 4)  # a slow one costs the others little
        for index, (slot, new_job) in enumerate(starting):
            if index:
                # One at a time while they are quick: two listing threads at once pass
                # the GIL back and forth at every system call (a thousand kernelspecs
                # took a third longer). One that is slow gets company after `stagger`.
                starting[index - 1][1].done.wait(stagger)
            new_job.started = time.monotonic()
            threading.Thread(
                target=_run_provider,
                args=(slot, new_job),
                name=f"kernelkit-provider-{slot.name}",
                daemon=True,  # a hung provider must not keep the process alive
            ).start()
        kernels: list[KernelType] = []
        for slot, job in plan:
            if job is None:
                if slot.cached is not None:
                    kernels.extend(slot.cached.kernels)
                continue
            if not job.done.wait(max(0.0, deadline - time.monotonic())):
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

    def prepare(self, type_id: str, *, env: Mapping[str, str] | None = None) -> LaunchPlan:
        """What launching the kernel type ``type_id`` here takes, for a caller that starts
        and manages the kernel itself: its kernelspec and its environment, activated.

        ``type_id`` is any id or alias the listing shows (``spec/python3``,
        ``env/<env-id>/python3``, a plugin's ``<provider>/<name>``) or a bare kernelspec
        name (see :meth:`FindResult.get`). ``env`` goes on top of the activated
        environment. With a manager::

            plan = finder.prepare("env/myenv-1a2b3c4d/python3")
            km = AsyncKernelManager(kernel_spec=plan.spec)
            await km.start_kernel(env=plan.env, inherit_env=False)

        Blocking: activating a conda prefix may run its activation scripts (once; the
        result is cached). From async code: ``await asyncio.to_thread(finder.prepare, id)``.
        Kernel types whose provider launches them its own way (e.g. on a remote server)
        have no plan: start those with :meth:`launch` or :meth:`alaunch`.

        Raises:
            NoSuchKernel: no kernel type has that id (the error lists the ids).
            KernelSpecError: the kernel type is broken (the message lists its problems).
            DiscoveryError: it cannot be launched from a kernelspec here (no kernelspec,
                or its provider launches it its own way).
            EnvironmentActivationError: its environment could not be activated.
        """
        kernel_type = self.get(type_id)
        provider = self.provider(kernel_type.provider)
        prepare = getattr(provider, "prepare", None)
        if prepare is None:
            # a duck-typed provider: the default plan, unless it launches its own way
            if getattr(provider, "launch", None) is not None:
                raise DiscoveryError(
                    f"kernel provider {kernel_type.provider!r} launches {kernel_type.id} its "
                    "own way: launch it with KernelFinder.launch() or alaunch()"
                )
            prepare = KernelProvider().prepare
        plan = prepare(kernel_type)
        if not isinstance(plan, LaunchPlan):
            raise DiscoveryError(
                f"kernel provider {kernel_type.provider!r} prepared a "
                f"{type(plan).__name__}, not a LaunchPlan, for {kernel_type.id}"
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
        # Imported here: asyncio is needed only by watchers, never by a plain listing.
        from kernelkit.discovery._watch import watch_changes

        async for change in watch_changes(self.find, interval=interval):
            yield change

    async def alaunch(
        self,
        type_id: str,
        *,
        kernel_id: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        extra_arguments: Sequence[str] = (),
        parent: object | None = None,
    ) -> KernelHandle:
        """Launch the kernel type ``type_id`` through its provider; return the provisioner,
        launched (connection info, poll, wait, signals, stop, cleanup).

        ``env`` is added on top of the activated environment.

        Raises:
            NoSuchKernel: no kernel type has that id.
            DiscoveryError: the kernel type cannot be launched (a broken environment).
            EnvironmentActivationError: its environment could not be activated.
            ProvisioningError: the provisioner is missing or the kernel failed to start.
        """
        # Imported here: asyncio is needed only by launches, never by a plain listing.
        from kernelkit.discovery._blocking import to_thread

        kernel_type = await to_thread(self.get, type_id)
        provider = self.provider(kernel_type.provider)
        options = LaunchOptions(
            kernel_id=kernel_id,
            env=dict(env or {}),
            cwd=os.fspath(cwd) if cwd is not None else None,
            extra_arguments=tuple(extra_arguments),
            parent=parent,
        )
        launch = getattr(provider, "launch", None)
        if launch is None:
            launch = KernelProvider().launch  # a duck-typed provider: the default launch
        result: KernelHandle = await launch(kernel_type, options)
        return result

    def launch(
        self,
        type_id: str,
        *,
        kernel_id: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        extra_arguments: Sequence[str] = (),
        parent: object | None = None,
        timeout: float | None = None,
    ) -> LaunchedKernel:
        """Blocking :meth:`alaunch`: returns a :class:`LaunchedKernel` that owns an event
        loop thread for the kernel's provisioner (close it, or use ``with``).

        ``timeout`` bounds the whole launch (None: the provisioner's own start timeout).

        Raises:
            The errors of :meth:`alaunch`, and KernelTimeout past ``timeout``.
        """
        # Imported here: asyncio is needed only by launches, never by a plain listing.
        from kernelkit.discovery._blocking import LaunchedKernel

        return LaunchedKernel.start(
            self.alaunch(
                type_id,
                kernel_id=kernel_id,
                env=env,
                cwd=cwd,
                extra_arguments=extra_arguments,
                parent=parent,
            ),
            timeout=timeout,
        )
