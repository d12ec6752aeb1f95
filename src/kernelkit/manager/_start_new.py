"""A started kernel and a ready client in one call: :func:`start_new_async_kernel`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kernelkit._errors import KernelDied, KernelError, KernelStartError, KernelTimeout
from kernelkit.client import AsyncKernelClient
from kernelkit.discovery import KernelFinder, KernelType
from kernelkit.manager._manager import AsyncKernelManager
from kernelkit.provisioning import KernelProvisionerFactory
from kernelkit.specs import KernelSpec

__all__ = [
    "not_ready_error",
    "start_new_async_kernel",
]


async def start_new_async_kernel(
    kernel_name: str | None = None,
    *,
    kernel_spec: KernelSpec | None = None,
    kernel_type: KernelType | None = None,
    finder: KernelFinder | None = None,
    startup_timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    cwd: str | None = None,
    extra_arguments: Sequence[str] = (),
    autorestart: bool = True,
    provisioner_factory: KernelProvisionerFactory | None = None,
) -> tuple[AsyncKernelManager, AsyncKernelClient]:
    """Start a kernel and return its manager and a started client, once it is ready.

    The kernel is chosen as :class:`AsyncKernelManager` does (a kernelspec name or
    kernel type id, ``kernel_spec`` or ``kernel_type``). The caller closes both:
    ``await kc.aclose()`` and ``await km.shutdown_kernel()``.

    Raises:
        NoSuchKernel, KernelSpecError, KernelStartError: as :meth:`AsyncKernelManager.start_kernel`;
            KernelStartError also when the kernel dies before it is ready.
        KernelTimeout: not ready within ``startup_timeout`` seconds (the kernel is stopped).
    """
    km = AsyncKernelManager(
        kernel_name,
        kernel_spec=kernel_spec,
        kernel_type=kernel_type,
        finder=finder,
        autorestart=autorestart,
        provisioner_factory=provisioner_factory,
    )
    await km.start_kernel(
        env=env, inherit_env=inherit_env, cwd=cwd, extra_arguments=extra_arguments
    )
    kc = km.client()
    try:
        await kc.start()
        await kc.wait_for_ready(timeout=startup_timeout)
    except BaseException as exc:
        tail = km.output_tail()
        await kc.aclose()
        await km.shutdown_kernel(now=True)
        error = not_ready_error(exc, kernel_name=km.kernel_name, timeout=startup_timeout, tail=tail)
        if error is None:
            raise
        raise error from exc
    return km, kc


def not_ready_error(
    exc: BaseException, *, kernel_name: str, timeout: float, tail: Sequence[str]
) -> KernelError | None:
    """What a start-and-wait-for-ready helper raises instead of ``exc`` (None: ``exc``)."""
    if isinstance(exc, KernelDied):
        return KernelStartError(
            "the kernel died before it was ready",
            kernel_name=kernel_name,
            exit_code=exc.exit_code,
            output_tail=exc.output_tail,
        )
    if isinstance(exc, KernelTimeout):
        detail = ("; last output:\n    " + "\n    ".join(tail)) if tail else ""
        return KernelTimeout(
            f"kernel {kernel_name!r} did not become ready within {timeout:g} s ({exc}){detail}"
        )
    return None
