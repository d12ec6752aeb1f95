"""Which kernel a notebook runs in, and why: :func:`choose_kernel`.

In order:

1. the kernelkit identity the notebook carries (``metadata.kernelkit``, written by the
   last ``kernelkit run``): the same kernel type id if it is here, else a kernel of an
   environment with the same name and kind (ids hold a hash of the path, which differs
   between machines), as long as the notebook's kernelspec name has not changed since;
2. the kernelspec its metadata names (``metadata.kernelspec.name``), if found here;
3. the nearest project environment, from the notebook's folder up to the root: ``.venv``
   (or ``venv``, ``.conda``, ``.pixi/envs/*``), or the conda environment an
   ``environment.yml`` names, with a kernel in the notebook's language;
4. a kernel of the notebook's language (kernelspecs first, as listed).

Reads the filesystem only: nothing is activated or started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelkit._errors import NoSuchKernel, NotebookError
from kernelkit.discovery import EnvProvider, KernelFinder, KernelType
from kernelkit.envs import EnvLocations
from kernelkit.notebooks._document import Notebook

__all__ = ["NotebookKernel", "choose_kernel", "kernel_identity", "notebook_language"]

_PROJECT_MARKERS = (".venv", "venv", ".conda", ".pixi")
_ENV_FILES = ("environment.yml", "environment.yaml")
_ENV_NAME = re.compile(r"^name:\s*['\"]?([^'\"\s#]+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class NotebookKernel:
    """The kernel chosen for a notebook, the finder that found it (its manager prepares
    the launch with it), and why it was chosen (one sentence)."""

    kernel_type: KernelType
    finder: KernelFinder
    reason: str


def notebook_language(nb: Notebook) -> str:
    """The notebook's language: its kernelspec's, else its language_info's, else python."""
    metadata = nb.metadata
    for key in ("kernelspec", "language_info"):
        section = metadata.get(key)
        if isinstance(section, dict):
            language = section.get("language" if key == "kernelspec" else "name")
            if isinstance(language, str) and language:
                return language.lower()
    return "python"


def kernel_identity(kernel: KernelType, *, python_version: str | None = None) -> dict[str, Any]:
    """What ``metadata.kernelkit`` records so the same choice is made elsewhere."""
    identity: dict[str, Any] = {"kernel": kernel.id, "language": kernel.language}
    if kernel.spec is not None:
        identity["kernelspec"] = kernel.spec.name
    env = kernel.environment
    if env is not None:
        identity["environment"] = {
            "name": env.name,
            "kind": str(env.kind),
            "python_version": python_version or env.python_version,
            "prefix": str(env.prefix),
        }
    elif python_version:
        identity["python_version"] = python_version
    return identity


def _healthy(kernels: list[KernelType], language: str) -> list[KernelType]:
    return [k for k in kernels if k.healthy and k.language.lower() == language]


def _from_identity(nb: Notebook, finder: KernelFinder) -> NotebookKernel | None:
    identity = nb.metadata.get("kernelkit")
    if not isinstance(identity, dict):
        return None
    spec_name = (nb.metadata.get("kernelspec") or {}).get("name")
    if identity.get("kernelspec") and spec_name and spec_name != identity["kernelspec"]:
        return None  # the kernelspec was changed since (in Jupyter): it decides
    type_id = identity.get("kernel")
    if isinstance(type_id, str) and type_id:
        try:
            kernel = finder.get(type_id)
        except NoSuchKernel:
            kernel = None
        if kernel is not None and kernel.healthy:
            return NotebookKernel(
                kernel, finder, f"the notebook's kernelkit metadata names {type_id}"
            )
    env = identity.get("environment")
    language = str(identity.get("language") or notebook_language(nb)).lower()
    prefix = env.get("prefix") if isinstance(env, dict) else None
    if isinstance(prefix, str) and prefix and Path(prefix).is_dir():
        # The same machine: that environment, wherever it is (not only where the
        # finder looks).
        local = KernelFinder({"env": EnvProvider(EnvLocations(prefixes=(Path(prefix),)))})
        kernels = _healthy(list(local.find()), language)
        same = [k for k in kernels if k.id == type_id] or kernels
        if same:
            return NotebookKernel(
                same[0], local, f"the notebook's kernelkit metadata names the environment {prefix}"
            )
    if isinstance(env, dict) and env.get("name"):
        for kernel in _healthy(list(finder.find()), language):
            found = kernel.environment
            if (
                found is not None
                and found.name == env["name"]
                and str(found.kind) == env.get("kind")
            ):
                return NotebookKernel(
                    kernel,
                    finder,
                    f"the notebook's kernelkit metadata names the {env.get('kind')} "
                    f"environment {env['name']!r}",
                )
    return None


def _from_kernelspec(nb: Notebook, finder: KernelFinder) -> NotebookKernel | None:
    name = (nb.metadata.get("kernelspec") or {}).get("name")
    if not isinstance(name, str) or not name:
        return None
    try:
        kernel = finder.get(name)
    except NoSuchKernel:
        return None
    return NotebookKernel(kernel, finder, f"the notebook's metadata names kernelspec {name!r}")


def _conda_env_name(folder: Path) -> str | None:
    for name in _ENV_FILES:
        try:
            text = (folder / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        match = _ENV_NAME.search(text)
        if match:
            return match.group(1)
    return None


def _from_project(nb: Notebook, finder: KernelFinder, language: str) -> NotebookKernel | None:
    start = nb.path.resolve().parent
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in _PROJECT_MARKERS):
            local = KernelFinder({"env": EnvProvider(EnvLocations(project_dirs=(folder,)))})
            kernels = _healthy(list(local.find()), language)
            if kernels:
                env = kernels[0].environment
                where = env.prefix if env is not None else folder
                return NotebookKernel(
                    kernels[0], local, f"the nearest project environment is {where}"
                )
        conda_name = _conda_env_name(folder)
        if conda_name is not None:
            for kernel in _healthy(list(finder.find()), language):
                env = kernel.environment
                if env is not None and env.is_conda and env.name == conda_name:
                    return NotebookKernel(
                        kernel,
                        finder,
                        f"{folder / 'environment.yml'} names the conda environment {conda_name!r}",
                    )
    return None


def choose_kernel(nb: Notebook, *, finder: KernelFinder | None = None) -> NotebookKernel:
    """The kernel ``nb`` runs in, and why (see the module docstring for the order).

    Raises:
        NotebookError: no kernel here fits (the error lists the kernels there are).
    """
    finder = finder or KernelFinder()
    language = notebook_language(nb)
    chosen = (
        _from_identity(nb, finder)
        or _from_kernelspec(nb, finder)
        or _from_project(nb, finder, language)
    )
    if chosen is not None:
        return chosen
    kernels = list(finder.find())
    same = _healthy(kernels, language)
    if same:
        named = (nb.metadata.get("kernelspec") or {}).get("name")
        missing = f"its kernelspec {named!r} is not here; " if named else ""
        return NotebookKernel(
            same[0],
            finder,
            f"{missing}no project environment; the first {language} kernel found",
        )
    healthy = sorted(k.id for k in kernels if k.healthy)
    raise NotebookError(
        f"no {language} kernel here for {nb.path} (its metadata names none that is here, and "
        f"no project environment has one); kernels here: {', '.join(healthy) or 'none'}. "
        "Name one with --kernel, or install one into the project's environment"
    )
