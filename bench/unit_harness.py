#!/usr/bin/python3
"""The in-unit half of the real-unit benchmark (bench/realunit.py).

Runs inside a booted magnum unit (tests/realunit), started once by the host
through nsenter, so that no nsenter, env or shell stands between the timer
and the dispatcher it times. It reads one JSON request per line on stdin:

  {"charm_dir": ..., "dispatch_path": "hooks/update-status", "env": {...}}

runs `<charm_dir>/dispatch` once with exactly that environment (as a Juju
agent runs it: cwd the charm dir, stdin /dev/null, output to a log file),
waits for it with wait4, and answers one JSON line:

  {"code": 0, "wall_ns": ..., "cpu_ns": ...}

wall_ns is from just before posix_spawn to wait4's return; cpu_ns is the
rusage of the dispatcher and every process it waited for (the hook tools).
The host reads peak RSS and the spawn list from the kernel's taskstats
records (bench/taskstats.py), which a process in the unit cannot register
for. Standard library only: the unit has Debian's python3 and no network.
"""

import json
import os
import sys
from time import perf_counter_ns as _now


def main():
    log_path = sys.argv[1] if len(sys.argv) > 1 else "/dev/null"
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        charm_dir = req["charm_dir"]
        os.write(log, f"--- {charm_dir} {req['dispatch_path']}\n".encode())
        os.chdir(charm_dir)
        env = dict(req["env"])
        env["JUJU_DISPATCH_PATH"] = req["dispatch_path"]
        env["JUJU_CHARM_DIR"] = charm_dir
        start = _now()
        pid = os.posix_spawn(
            "./dispatch",
            ["./dispatch"],
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, log, 1),
                (os.POSIX_SPAWN_DUP2, log, 2),
            ],
        )
        _, status, ru = os.wait4(pid, 0)
        wall = _now() - start
        print(
            json.dumps(
                {
                    "code": os.waitstatus_to_exitcode(status),
                    "wall_ns": wall,
                    "cpu_ns": int((ru.ru_utime + ru.ru_stime) * 1e9),
                    "maxrss_kib": ru.ru_maxrss,
                    "minflt": ru.ru_minflt,
                }
            ),
            flush=True,
        )



if __name__ == "__main__":
    main()
