"""Smoke tests of the benchmark suite itself (bench/): the fake kernel speaks the protocol
correctly, and a tiny figure runs end to end into a table and a JSON file. Fast, no
ipykernel; numbers are not checked, only that the machinery works."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import zmq
from bench._clients import FakeKernel, JupyterClientBlocking
from bench._config import Config
from bench._core import (
    FLOOR,
    KERNELKIT,
    Contestant,
    Group,
    Metric,
    Missing,
    Target,
    last_words,
    run_group,
)
from bench._fig_session import groups as session_groups
from bench._raw import RawClient

from bench import _report
from kernelkit.protocol import Session


@pytest.fixture
def fake_kernel(tmp_path: Path):
    kernel = FakeKernel(tmp_path, "smoke")
    try:
        yield kernel
    finally:
        kernel.stop()
    assert kernel.proc.returncode == 0  # it exited on shutdown_request, not killed


def test_fake_kernel_answers_the_floor_client(fake_kernel: FakeKernel) -> None:
    assert fake_kernel.connection_file.stat().st_mode & 0o077 == 0  # it holds the key
    client = RawClient(fake_kernel.info)
    try:
        client.wait_ready(10)
        assert client.kernel_info()["status"] == "ok"
        assert client.execute("pass")["status"] == "ok"
        seen: list[str] = []
        msg_id = client.send("shell", "execute_request", {"code": "stream 200"})
        client.idle(msg_id, timeout=10, on_output=lambda h, c: seen.append(c["text"]))
        assert seen == [f"{i}\n" for i in range(200)]
        assert client.reply("shell", msg_id)["status"] == "ok"
    finally:
        client.close()


def test_fake_kernel_heartbeat_echoes(fake_kernel: FakeKernel) -> None:
    ctx = zmq.Context()
    try:
        hb = ctx.socket(zmq.REQ)
        hb.linger = 0
        hb.connect(f"tcp://127.0.0.1:{fake_kernel.info['hb_port']}")
        hb.send(b"ping")
        assert hb.poll(10_000)
        assert hb.recv() == b"ping"
        hb.close()
    finally:
        ctx.term()


def test_fake_kernel_frames_verify_in_kernelkit_and_jupyter_client(
    fake_kernel: FakeKernel,
) -> None:
    key = fake_kernel.info["key"].encode()
    client = RawClient(fake_kernel.info)
    try:
        client.wait_ready(10)
        msg_id = client.send("shell", "kernel_info_request", {})
        sock = client.s["shell"]
        assert sock.poll(10_000)
        frames = sock.recv_multipart()
    finally:
        client.close()
    _, msg = Session(key).deserialize(frames)
    assert msg.msg_type == "kernel_info_reply"
    assert msg.parent_id == msg_id

    jc = JupyterClientBlocking()
    jc.open(fake_kernel)  # wait_for_ready inside: signatures check out in jupyter_client
    try:
        jc.execute("pass")
    finally:
        jc.close()


class _Fixed(Contestant):
    def __init__(self, name: str, value: float) -> None:
        self.name = self.role = name
        self.value = value

    def sample(self) -> dict[str, float]:
        return {"t": self.value}


class _Absent(Contestant):
    name = role = KERNELKIT

    def setup(self) -> None:
        raise Missing("kernelkit.thing does not exist yet")


def test_missing_contestant_is_shown_with_its_reason() -> None:
    group = Group(
        figure=9,
        name="demo",
        metrics=[Metric("t", "demo time", "ms", target=Target(FLOOR, "<=", 1.05))],
        contestants=[_Absent, lambda: _Fixed(FLOOR, 2.0)],
        reps=2,
    )
    result = run_group(group, log=lambda text: None)
    table = _report.markdown([result], {})
    assert "missing: kernelkit.thing does not exist yet" in table
    (row,) = _report.rows([result])
    assert row.verdict == "missing"
    assert result.by_role(FLOOR).samples == {"t": [2.0, 2.0]}  # type: ignore[union-attr]


class _Flaky(Contestant):
    name = role = KERNELKIT

    def __init__(self) -> None:
        self.calls = 0

    def sample(self) -> dict[str, float]:
        self.calls += 1
        if self.calls == 2:
            raise TimeoutError("no reply")
        return {"t": 1.0}


def test_a_failed_sample_is_reported_and_sampling_goes_on() -> None:
    group = Group(
        figure=9,
        name="demo",
        metrics=[Metric("t", "demo time", "ms", target=Target(FLOOR, "<=", 1.05))],
        contestants=[_Flaky, lambda: _Fixed(FLOOR, 1.0)],
        reps=3,
        warmup=0,
    )
    result = run_group(group, log=lambda text: None)
    kk = result.by_role(KERNELKIT)
    assert kk is not None
    assert kk.samples == {"t": [1.0, 1.0]}
    assert kk.failures == ["sample 2: TimeoutError: no reply"]
    (row,) = _report.rows([result])
    assert row.verdict == "met; 1 failed"
    assert "sample failed**: sample 2: TimeoutError: no reply" in _report.markdown([result], {})


def test_session_figure_runs_to_table_and_json(tmp_path: Path) -> None:
    cfg = Config(quick=True, tmp=tmp_path, jupyter_dir=tmp_path, reps_scale=0.1)
    (group,) = session_groups(cfg)
    group.warmup = 0
    for c in group.contestants:
        assert callable(c)
    t0 = time.monotonic()
    result = run_group(group, log=lambda text: None)
    assert time.monotonic() - t0 < 10
    statuses = {c.name: c.status for c in result.contestants}
    assert statuses == {
        "kernelkit": "ok",
        "jupyter_client": "ok",
        "jupyter_client[json]": "ok",
        "floor": "ok",
    }
    table = _report.markdown([result], {"environment": {"python": "3"}})
    assert "session deserialize+verify, 1 MiB" in table
    out = tmp_path / "results.json"
    _report.write_json(out, [result], {})
    data = json.loads(out.read_text())
    assert {r["metric"] for r in data["rows"]} == {"ser_small", "ser_big", "de_small", "de_big"}
    assert all(r["kernelkit_over_floor"] > 0 for r in data["rows"])


def test_last_words_finds_the_error_in_a_boxed_message() -> None:
    text = "╭─ Error ─╮\n│ No such command 'list'. │\n╰─────────╯\n"
    assert last_words(text) == "No such command 'list'."
