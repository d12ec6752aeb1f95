"""Code that makes a kernel start processes that leave its process group and parentage;
each writes the escapee's pid to the file ``{out}``."""

SETSID_CHILD = """
import subprocess
p = subprocess.Popen(["setsid", "sleep", "300"])
open({out!r}, "w").write(str(p.pid))
"""

# fork, setsid, fork again, the middle process exits: init (or a subreaper) adopts it.
DAEMON = """
import os
mid = os.fork()
if mid == 0:
    os.setsid()
    pid = os.fork()
    if pid == 0:
        os.execvp("sleep", ["sleep", "300"])
    with open({out!r}, "w") as f:
        f.write(str(pid))
    os._exit(0)
os.waitpid(mid, 0)
"""

# A daemon with an emptied environment: no tag to find it by; only a subreaper keeps it.
BARE_DAEMON = DAEMON.replace(
    'os.execvp("sleep", ["sleep", "300"])', 'os.execve("/bin/sleep", ["sleep", "300"], {{}})'
)

ESCAPEES = (SETSID_CHILD, DAEMON, BARE_DAEMON)
