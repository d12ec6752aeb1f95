"""A tiny stand-in for a kernel process, run by path: ``python fake_kernel.py FILE ACTION...``.

It speaks no messaging protocol: it only does what a kernel does at start (read its file,
bind ports, report them) and the bad things kernels do (exit at once, ignore SIGTERM,
start children, never report). Actions run in order; unless one exits, it then waits for
a signal forever.

- ``writeback``: ports 0 in the file -> bind five TCP ports, rewrite the file as
  ipykernel does (unlink, re-create, two writes with a pause between: a partial-write
  window); ports given -> bind those (printing "Address already in use" and exiting 1 if
  one is taken), plus a heartbeat echo on hb_port.
- ``register``: JEP 66 as xeus-zmq does it (needs pyzmq).
- ``hb``: bind the given ports, with a heartbeat echo on hb_port (parent-chosen ports).
- ``bindfail-once:MARKER``: the first run (no MARKER yet) dies like a bind failure.
- ``exit-on-usr1``: SIGUSR1 makes it exit 0, as a kernel does after shutdown_request
  (the signal goes to its pid only, so its children are left as a kernel leaves them).
- ``exit:N`` (prints to stdout and stderr first), ``ignore-term`` (children started after
  it inherit that), ``child``, ``setsid-child``, ``spam:N``, ``echo-env:NAME``, ``silent``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
held: list[object] = []


def bind(ip: str, port: int) -> int:
    s = socket.socket()
    try:
        s.bind((ip, port))
    except OSError as exc:
        print(f"OSError: [Errno {exc.errno}] Address already in use: {port}", file=sys.stderr)
        sys.exit(1)
    s.listen()
    held.append(s)
    return int(s.getsockname()[1])


def heartbeat(ip: str, port: int) -> None:
    import threading

    import zmq

    sock = zmq.Context.instance().socket(zmq.REP)
    try:
        sock.bind(f"tcp://{ip}:{port}")
    except zmq.ZMQError:
        print("zmq.error.ZMQError: Address already in use", file=sys.stderr)
        sys.exit(1)

    def echo() -> None:
        while True:
            sock.send(sock.recv())

    threading.Thread(target=echo, daemon=True).start()


def writeback(path: str) -> None:
    with open(path) as f:
        info = json.load(f)
    ip = info.get("ip", "127.0.0.1")
    if all(int(info.get(k, 0)) for k in PORTS):
        for k in PORTS[:-1]:
            bind(ip, int(info[k]))
        heartbeat(ip, int(info["hb_port"]))
        return
    for k in PORTS:
        info[k] = bind(ip, 0)
    data = json.dumps(info, indent=2).encode()
    os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data[: len(data) // 2])
    time.sleep(0.02)  # the window in which a reader sees half a file
    os.write(fd, data[len(data) // 2 :])
    os.close(fd)


def register(path: str) -> None:
    import zmq

    from kernelkit.protocol import (
        KernelRegistration,
        Session,
        decode_registration_reply,
        encode_registration,
    )

    with open(path) as f:
        info = json.load(f)
    ctx = zmq.Context.instance()
    ports = {}
    for k in PORTS:
        s = ctx.socket(zmq.ROUTER)
        ports[k] = s.bind_to_random_port(f"tcp://{info['ip']}")
        held.append(s)
    session = Session(info["key"].encode(), signature_scheme=info["signature_scheme"])
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(f"tcp://{info['registration_ip']}:{info['registration_port']}")
    reg = KernelRegistration(kernel_id=info["kernel_id"], **ports)
    dealer.send_multipart(encode_registration(reg, session))
    if not dealer.poll(5000):
        print("no registration reply", file=sys.stderr)
        sys.exit(4)
    decode_registration_reply(dealer.recv_multipart(), session)
    print("registered", flush=True)


def main() -> None:
    path, actions = sys.argv[1], sys.argv[2:]
    for action in actions:
        name, _, arg = action.partition(":")
        if name == "exit":
            print("fake kernel: starting", flush=True)
            print("fake kernel: fatal error, giving up", file=sys.stderr, flush=True)
            sys.exit(int(arg))
        elif name == "writeback":
            writeback(path)
        elif name == "register":
            register(path)
        elif name == "hb":
            with open(path) as f:
                info = json.load(f)
            for k in PORTS[:-1]:
                bind(info["ip"], int(info[k]))
            heartbeat(info["ip"], int(info["hb_port"]))
        elif name == "bindfail-once":
            if not os.path.exists(arg):
                open(arg, "w").close()
                print("OSError: [Errno 98] Address already in use", file=sys.stderr)
                sys.exit(1)
        elif name == "exit-on-usr1":
            signal.signal(signal.SIGUSR1, lambda *_: sys.exit(0))
        elif name == "ignore-term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif name in ("child", "setsid-child"):
            import subprocess

            child = subprocess.Popen(
                [sys.executable, "-c", "import signal; signal.pause()"],
                start_new_session=name == "setsid-child",
            )
            print(f"child {child.pid}", flush=True)
        elif name == "spam":
            for i in range(int(arg)):
                print(f"line {i} " + "x" * 50)
            sys.stdout.flush()
        elif name == "echo-env":
            print(f"{arg}={os.environ.get(arg)}", flush=True)
        elif name == "silent":
            pass
        else:
            sys.exit(f"fake kernel: unknown action {action!r}")
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
