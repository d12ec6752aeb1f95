"""The floor of ``kernelkit run -c CODE`` (figure 7): what a command cannot avoid.

Python starts, imports pyzmq and orjson (what any client needs), and starts the kernel
of the kernelspec named by argv[1] (its argv, ports chosen here beforehand, no
provisioner, no discovery); then, with the raw pyzmq client of the benchmarks, waits for
the kernel to answer, executes argv[2], and shuts the kernel down.
"""

import json
import os
import socket
import subprocess
import sys

import orjson  # noqa: F401 - what a client needs, imported before the kernel starts
import zmq  # noqa: F401


def main() -> None:
    spec_dir, code = sys.argv[1], sys.argv[2]
    with open(os.path.join(spec_dir, "kernel.json")) as f:
        spec = json.load(f)
    runtime = os.environ["JUPYTER_RUNTIME_DIR"]
    path = os.path.join(runtime, f"kernel-floor-{os.getpid()}.json")
    names = ("shell", "iopub", "stdin", "control", "hb")
    socks = [socket.socket() for _ in names]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    conn = {f"{n}_port": s.getsockname()[1] for n, s in zip(names, socks, strict=True)}
    for s in socks:
        s.close()
    conn.update(ip="127.0.0.1", transport="tcp", key=os.urandom(16).hex(),
                signature_scheme="hmac-sha256", kernel_name=os.path.basename(spec_dir))  # fmt: skip
    with open(path, "w") as f:
        json.dump(conn, f)
    argv = [a.replace("{connection_file}", path) for a in spec["argv"]]
    kernel = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from bench._raw import RawClient

        client = RawClient(conn)
        try:
            client.wait_ready()
            client.execute(code)
            client.shutdown()
        finally:
            client.close()
        kernel.wait(timeout=30)
    finally:
        if kernel.poll() is None:
            kernel.kill()
            kernel.wait()
        os.unlink(path)


if __name__ == "__main__":
    main()
