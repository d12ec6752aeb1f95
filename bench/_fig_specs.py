"""Figure 5: listing kernelspecs (10, 100, 1000 generated specs) and environment kernels.

Each sample is a fresh worker process (``python -m bench._worker``) that lists once and
then lists again several times:

- fresh: from spawning the process to the first listing done (interpreter start, imports,
  listing), as a command-line tool pays it;
- warm: the median of the later listings in that same process;
- cold (1000 specs): fresh, with kernelkit's listing cache empty (the first listing on a
  machine, or after every spec changed); jupyter_client and the floor keep no cache, so
  theirs is their fresh time from the same sample.

kernelkit keeps what each kernel.json of a directory of 16 or more specs says in a cache
file (kernelkit.specs._listcache), trusted per spec only while ``stat`` of its kernel.json
is unchanged; the warm-up sample writes it, in a cache directory of the run's own. The
spec files must be older than its racy window (2 s) to be trusted: setup waits for that,
as any machine whose specs were not installed in the last two seconds would.

kernelkit: ``scan_kernel_specs()`` (every kernel.json loaded and checked); jupyter_client:
``KernelSpecManager().get_all_specs()`` (what ``jupyter kernelspec list --json`` does);
the floor: ``os.scandir`` over the same directories and ``orjson.loads`` of each
kernel.json. Environments: 25 venvs and 25 conda-like prefixes, each with a kernelspec,
found through the env-discovery locations; jupyter_client has no such thing.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

from bench import _kk, _procs
from bench._config import Config
from bench._core import (
    FLOOR,
    JUPYTER_CLIENT,
    KERNELKIT,
    Contestant,
    Group,
    Metric,
    Missing,
    Target,
    last_words,
)

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")


def make_specs(root: Path, n: int) -> Path:
    """``root/kernels/spec-<i>/`` with a kernel.json and a logo each; returns ``root``."""
    kernels = root / "kernels"
    for i in range(n):
        d = kernels / f"spec-{i:04d}"
        d.mkdir(parents=True)
        (d / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": f"Python 3 (spec {i})",
                    "language": "python",
                    "metadata": {"debugger": True},
                    "kernel_protocol_version": "5.5",
                },
                indent=1,
            )
        )
        (d / "logo-64x64.png").write_bytes(PNG)
    return root


def make_envs(root: Path, n: int) -> tuple[Path, Path]:
    """n/2 venvs (real, without pip) and n/2 conda-like prefixes, each with a kernelspec."""
    venvs, conda = root / "venvs", root / "conda"
    venvs.mkdir(parents=True)
    conda.mkdir(parents=True)
    builder = venv.EnvBuilder(with_pip=False, symlinks=True)
    py = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for i in range(n // 2):
        prefix = venvs / f"venv-{i:02d}"
        builder.create(prefix)
        _env_spec(
            prefix, "python3", ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        )
    for i in range(n - n // 2):
        prefix = conda / f"conda-{i:02d}"
        meta = prefix / "conda-meta"
        meta.mkdir(parents=True)
        (meta / "history").write_text("==> 2024-01-01 00:00:00 <==\n")
        (meta / "python-3.11.7-h0_0.json").write_text(
            json.dumps({"name": "python", "version": "3.11.7", "build": "h0_0"})
        )
        (prefix / "bin").mkdir()
        (prefix / "bin" / "python").symlink_to(sys.executable)
        (prefix / "lib" / py / "site-packages").mkdir(parents=True)
        if i % 2:
            _env_spec(
                prefix,
                "ir",
                ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"],
            )
        else:
            _env_spec(
                prefix, "python3", ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
            )
    return venvs, conda


def _env_spec(prefix: Path, name: str, argv: list[str]) -> None:
    d = prefix / "share" / "jupyter" / "kernels" / name
    d.mkdir(parents=True)
    lang = "R" if name == "ir" else "python"
    (d / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": name, "language": lang})
    )


def jupyter_kernel_dirs(env: dict[str, str]) -> list[str]:
    """Jupyter's kernelspec search path under ``env`` (asked in a fresh process)."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, jupyter_core.paths as p; print(json.dumps(p.jupyter_path('kernels')))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return list(json.loads(out.stdout))


#: kernelkit.specs._scan._RACY_NS, in seconds (plus a margin)
_RACY_S = 2.2


def _wait_until_trusted(root: Path) -> None:
    """Sleep until every kernel.json under ``root`` is older than kernelkit's racy
    window (once, in setup; at most ``_RACY_S``)."""
    newest = max((p.stat().st_ctime for p in root.glob("kernels/*/kernel.json")), default=0.0)
    time.sleep(max(0.0, min(_RACY_S, newest + _RACY_S - time.time())))


class Listing(Contestant):
    def __init__(
        self,
        task: str,
        who: str,
        env: dict[str, str],
        cwd: Path,
        warm: int,
        *,
        cold_cache: Path | None = None,
    ) -> None:
        self.task, self.who, self.env, self.cwd, self.warm = task, who, env, cwd, warm
        self.name = self.role = who
        #: where kernelkit's cold samples keep their (each time new) cache; None: no
        #: cold metric
        self.cold_cache = cold_cache
        self._cold = 0

    def setup(self) -> None:
        if self.task == "envs" and self.who == JUPYTER_CLIENT:
            raise Missing("jupyter_client has no environment discovery")
        if self.who == KERNELKIT:
            if self.task == "specs":
                _kk.list_specs()
                _wait_until_trusted(Path(self.env["JUPYTER_PATH"]))
            else:
                _kk.list_env_kernels()
                try:
                    _kk.api("kernelkit.discovery", "KernelFinder")
                    self.note = "via KernelFinder().find()"
                except (ImportError, AttributeError):
                    self.note = "via envs.find_environments() + scan_kernel_specs() per env"

    def _run(self, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "bench._worker", self.task, self.who, str(self.warm)],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            words = last_words(proc.stderr or proc.stdout)
            raise RuntimeError(f"worker exited {proc.returncode}: {words}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        return (r["t_done"] - t0) * 1000, r

    def sample(self) -> dict[str, float]:
        fresh, r = self._run(self.env)
        out = {
            "fresh": fresh,
            "warm": statistics.median(r["warm"]) * 1000,
            "_count": r["count"],
        }
        if self.cold_cache is not None:
            if self.who == KERNELKIT:
                self._cold += 1
                empty = self.cold_cache / f"cold-{self._cold}"  # a cache never written
                out["cold"] = self._run({**self.env, "KERNELKIT_CACHE_DIR": str(empty)})[0]
            else:
                out["cold"] = fresh  # no cache: every fresh listing is a cold one
        return out


def _worker_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(_procs.BENCH_DIR.parent)
    env.update(extra)
    return env


def groups(cfg: Config) -> list[Group]:
    out = []
    warm = cfg.pick(5, 10)
    empty = cfg.tmp / "empty"
    empty.mkdir(exist_ok=True)
    for n in (10, 100, 1000):
        root = make_specs(cfg.tmp / f"specs-{n}", n)
        env = _worker_env(
            {
                "JUPYTER_PATH": str(root),
                "JUPYTER_DATA_DIR": str(empty),
                "KERNELKIT_CACHE_DIR": str(cfg.tmp / f"kk-cache-{n}"),
            }
        )
        env["BENCH_SPEC_DIRS"] = os.pathsep.join(jupyter_kernel_dirs(env))
        target = Target(JUPYTER_CLIENT, "<=", 0.2) if n == 1000 else None
        cold = cfg.tmp / f"kk-cold-{n}" if n == 1000 else None
        metrics = [
            Metric("fresh", f"list {n} kernelspecs, fresh process", "ms", target=target),
            Metric("warm", f"list {n} kernelspecs, warm (same process)", "ms"),
        ]
        if cold is not None:
            metrics.append(
                Metric("cold", f"list {n} kernelspecs, fresh, kernelkit's cache empty", "ms")
            )
        out.append(
            Group(
                figure=5,
                name=f"specs-{n}",
                metrics=metrics,
                contestants=[
                    lambda w=w, env=env, cold=cold: Listing(
                        "specs", w, env, _procs.BENCH_DIR.parent, warm, cold_cache=cold
                    )
                    for w in (KERNELKIT, JUPYTER_CLIENT, FLOOR)
                ],
                reps=cfg.reps(2, 7),
                budget_s=cfg.pick(15, 40),
            )
        )

    n_envs = 50
    venvs, conda = make_envs(cfg.tmp / "envs", n_envs)
    home = cfg.tmp / "envs" / "home"
    home.mkdir()
    env = _worker_env(
        {
            "HOME": str(home),
            "WORKON_HOME": str(venvs),
            "CONDA_ENVS_PATH": str(conda),
            "PYENV_ROOT": str(empty),
            "JUPYTER_PATH": str(empty),
            "JUPYTER_DATA_DIR": str(empty),
            "BENCH_ENV_ROOTS": os.pathsep.join([str(venvs), str(conda)]),
        }
    )
    for var in ("CONDA_PREFIX", "CONDA_EXE", "CONDA_ROOT", "MAMBA_ROOT_PREFIX", "CONDA_ENVS_DIRS"):
        env.pop(var, None)
    out.append(
        Group(
            figure=5,
            name="envs",
            metrics=[
                Metric(
                    "fresh",
                    f"list kernels of {n_envs} environments, fresh process",
                    "ms",
                    target=Target("abs", "<=", 100),
                ),
                Metric("warm", f"list kernels of {n_envs} environments, warm", "ms"),
            ],
            contestants=[
                lambda w=w: Listing("envs", w, env, home, warm)
                for w in (KERNELKIT, JUPYTER_CLIENT, FLOOR)
            ],
            reps=cfg.reps(2, 9),
            budget_s=cfg.pick(15, 60),
            note=f"{n_envs // 2} venvs + {n_envs - n_envs // 2} conda-like prefixes, one spec each",
        )
    )
    return out
