"""A small kernel that speaks the messaging protocol, for manager tests.

Run as ``python fake_kernel.py CONNECTION_FILE [OPTION...]``. Raw pyzmq and hmac only (no
kernelkit, no ipykernel), so it starts in a fraction of ipykernel's time.

Ports: 0 in the file -> bind random ports and write them back (as ipykernel does);
ports given -> bind those (a restart on the old ports). Heartbeat echoes in a thread.

Shell: ``kernel_info_request``; ``execute_request`` whose code is commands joined by
``; `` (run in order, stopping at the first error):
``print TEXT`` (a stdout stream), ``err TEXT`` (stderr stream), ``result TEXT``
(execute_result), ``raise`` (an error reply), ``sleep SECONDS`` (interruptible by SIGINT:
KeyboardInterrupt error), ``exit N`` (os._exit), ``pid`` (result: its pid), anything else
(ok). Control: ``shutdown_request`` (reply, exit 0), ``interrupt_request`` (reply).

Options: ``exit-at-start:N`` (print to both streams, then exit N before binding),
``ignore-term`` (SIGTERM ignored), ``mute`` (bind and write back, never answer anything),
``no-exit`` (answer shutdown_request but stay), ``say:TEXT`` (print TEXT at start),
``die-after:SECONDS`` (exit 7 that long after binding), ``no-interrupt`` (``sleep``
ignores SIGINT).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import zmq

PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
DELIM = b"<IDS|MSG>"


def die() -> None:
    print("fake kernel: dying", flush=True)
    os._exit(7)


def main() -> None:
    path, options = sys.argv[1], sys.argv[2:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # like ipykernel: only while executing
    for opt in options:
        if opt.startswith("say:"):
            print(opt[4:], flush=True)
        if opt.startswith("exit-at-start:"):
            print("fake kernel: exiting at start", flush=True)
            print("fake kernel: stderr line", file=sys.stderr, flush=True)
            sys.exit(int(opt.split(":", 1)[1]))
        if opt == "ignore-term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(path) as f:
        info = json.load(f)
    key = info["key"].encode()
    ip = info["ip"]
    ctx = zmq.Context()
    socks: dict[str, Any] = {}
    kinds = {
        "shell": zmq.ROUTER,
        "control": zmq.ROUTER,
        "stdin": zmq.ROUTER,
        "iopub": zmq.PUB,
        "hb": zmq.REP,
    }
    for name, kind in kinds.items():
        s = ctx.socket(kind)
        s.linger = 0
        port = int(info[f"{name}_port"])
        if port:
            s.bind(f"tcp://{ip}:{port}")
        else:
            port = s.bind_to_random_port(f"tcp://{ip}")
            info[f"{name}_port"] = port
        socks[name] = s
    tmp = f"{path}.{os.getpid()}.tmp"
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(info, f)  # mode 0600, as ipykernel writes it: the file holds the key
    os.replace(tmp, path)
    for opt in options:
        if opt.startswith("die-after:"):
            threading.Timer(float(opt.split(":", 1)[1]), die).start()
    if "mute" in options:
        while True:
            time.sleep(3600)

    hb = socks.pop("hb")
    threading.Thread(target=lambda: zmq.proxy(hb, hb), daemon=True).start()
    session = uuid.uuid4().hex

    def sign(parts: list[bytes]) -> bytes:
        h = hmac.new(key, digestmod=hashlib.sha256)
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def send(
        sock: Any,
        idents: list[bytes],
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any],
    ) -> None:
        header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "session": session,
            "username": "fake",
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        }
        parts = [json.dumps(x).encode() for x in (header, parent, {}, content)]
        sock.send_multipart([*idents, DELIM, sign(parts), *parts])

    def status(state: str, parent: dict[str, Any]) -> None:
        send(socks["iopub"], [], "status", {"execution_state": state}, parent)

    def execute(code: str, parent: dict[str, Any], count: int) -> dict[str, Any]:
        for command in code.split("; "):
            result = run_command(command, parent, count)
            if result["status"] != "ok":
                return result
        return {"status": "ok"}

    def run_command(code: str, parent: dict[str, Any], count: int) -> dict[str, Any]:
        word, _, arg = code.partition(" ")
        if word == "print":
            send(socks["iopub"], [], "stream", {"name": "stdout", "text": arg + "\n"}, parent)
        elif word == "err":
            send(socks["iopub"], [], "stream", {"name": "stderr", "text": arg + "\n"}, parent)
        elif word in ("result", "pid"):
            text = str(os.getpid()) if word == "pid" else arg
            send(
                socks["iopub"],
                [],
                "execute_result",
                {"execution_count": count, "data": {"text/plain": text}, "metadata": {}},
                parent,
            )
        elif word == "raise":
            error = {
                "ename": "ValueError",
                "evalue": arg or "boom",
                "traceback": ["\x1b[31mTraceback:\x1b[0m", f"ValueError: {arg or 'boom'}"],
            }
            send(socks["iopub"], [], "error", error, parent)
            return {"status": "error", **error}
        elif word == "sleep":
            if "no-interrupt" not in options:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                time.sleep(float(arg))
            except KeyboardInterrupt:
                return {
                    "status": "error",
                    "ename": "KeyboardInterrupt",
                    "evalue": "",
                    "traceback": ["KeyboardInterrupt"],
                }
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        elif word == "exit":
            sys.stdout.flush()
            os._exit(int(arg))
        return {"status": "ok"}

    poller = zmq.Poller()
    for name in ("shell", "control"):
        poller.register(socks[name], zmq.POLLIN)
    count = 0
    while True:
        for sock, _ in poller.poll():
            frames = sock.recv_multipart()
            i = frames.index(DELIM)
            idents, parts = frames[:i], frames[i + 2 : i + 6]
            if not hmac.compare_digest(frames[i + 1], sign(parts)):
                continue
            header = json.loads(parts[0])
            content = json.loads(parts[3])
            msg_type = header["msg_type"]
            reply_type = msg_type.replace("_request", "_reply")
            status("busy", header)
            if msg_type == "kernel_info_request":
                reply = {
                    "status": "ok",
                    "protocol_version": "5.3",
                    "implementation": "fake",
                    "implementation_version": "0",
                    "banner": "fake",
                    "language_info": {"name": "fake"},
                }
            elif msg_type == "execute_request":
                count += 1
                reply = {"execution_count": count, **execute(content["code"], header, count)}
            elif msg_type == "shutdown_request":
                send(sock, idents, reply_type, {"status": "ok", **content}, header)
                status("idle", header)
                if "no-exit" not in options:
                    sys.exit(0)
                continue
            else:
                reply = {"status": "ok"}
            send(sock, idents, reply_type, reply, header)
            status("idle", header)


if __name__ == "__main__":
    main()
