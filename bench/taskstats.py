"""Per-process peak RSS (and threads, children) from the kernel's taskstats exit records.

Why not getrusage/wait4 alone: wait4's rusage of the charm includes every
descendant it reaped (the hook tools), and its ru_maxrss is the max over the
charm, those descendants, and the memory the child had *before* exec (with
posix_spawn/vfork that is the harness's own RSS). Taskstats sends, for every
task that exits on the machine, a record with:

- cpu_run_virtual_total: the task's sum_exec_runtime in ns, but as last
  updated by the scheduler: a task that ran 1 ms without sleeping may show
  0 (so bench.py takes CPU from wait4 instead);
- hiwater_rss: the peak RSS of the mm the task has at exit, i.e. of the
  program after exec only (taskstats_exit runs before exit_mm);
- ac_pid, ac_ppid, ac_tgid, ac_comm.

A thread group's threads each send a record (the charm's worker threads are
summed into it by tgid). Needs CONFIG_TASKSTATS and root (registering a
listener); `Listener.open()` returns None when the kernel refuses.
"""

import os
import socket
import struct

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
TASKSTATS_CMD_GET = 1
TASKSTATS_CMD_ATTR_REGISTER_CPUMASK = 3
TASKSTATS_TYPE_PID = 1
TASKSTATS_TYPE_TGID = 2
TASKSTATS_TYPE_STATS = 3
TASKSTATS_TYPE_AGGR_PID = 4
SO_RCVBUFFORCE = 33

# struct taskstats offsets (include/uapi/linux/taskstats.h, version >= 13).
OFF_VERSION = 0
OFF_RUN_VIRTUAL = 72  # cpu_run_virtual_total, ns
OFF_COMM = 80  # char[32]
OFF_PID = 128
OFF_PPID = 132
OFF_HIWATER_RSS = 200  # KiB
OFF_TGID = 368


def _nla(kind, payload):
    length = 4 + len(payload)
    return struct.pack("HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _attrs(buf):
    out, i = [], 0
    while i + 4 <= len(buf):
        length, kind = struct.unpack_from("HH", buf, i)
        if length < 4:
            break
        out.append((kind & 0x3FFF, buf[i + 4 : i + length]))
        i += (length + 3) & ~3
    return out


class Record:
    __slots__ = ("pid", "ppid", "tgid", "comm", "cpu_ns", "hiwater_kib")

    def __init__(self, stats):
        self.pid, self.ppid = struct.unpack_from("II", stats, OFF_PID)
        self.tgid = struct.unpack_from("I", stats, OFF_TGID)[0]
        self.comm = stats[OFF_COMM : OFF_COMM + 32].split(b"\0")[0].decode(errors="replace")
        self.cpu_ns = struct.unpack_from("Q", stats, OFF_RUN_VIRTUAL)[0]
        self.hiwater_kib = struct.unpack_from("Q", stats, OFF_HIWATER_RSS)[0]


class Listener:
    def __init__(self, sock):
        self.sock = sock
        self.overflowed = False

    @classmethod
    def open(cls):
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
            sock.bind((0, 0))
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
            family = cls._family(sock)
            cpus = f"0-{os.cpu_count() - 1}\0".encode()
            cls._send(sock, family, TASKSTATS_CMD_GET, _nla(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpus))
            listener = cls(sock)
            # Sanity: our own short-lived child must show up with its pid.
            pid = os.posix_spawn("/bin/true", ["/bin/true"], {})
            os.waitpid(pid, 0)
            if not any(r.pid == pid and r.comm == "true" for r in listener.drain()):
                sock.close()
                return None
            return listener
        except OSError:
            return None

    @staticmethod
    def _send(sock, family, cmd, attrs):
        payload = struct.pack("BBH", cmd, 1, 0) + attrs
        sock.send(struct.pack("IHHII", 16 + len(payload), family, 1, 1, 0) + payload)

    @classmethod
    def _family(cls, sock):
        cls._send(sock, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, _nla(CTRL_ATTR_FAMILY_NAME, b"TASKSTATS\0"))
        data = sock.recv(65536)
        length = struct.unpack_from("I", data)[0]
        for kind, value in _attrs(data[20:length]):
            if kind == CTRL_ATTR_FAMILY_ID:
                return struct.unpack("H", value[:2])[0]
        raise OSError("no TASKSTATS genetlink family")

    def drain(self):
        """Every per-task exit record received so far."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    data = self.sock.recv(1 << 20)
                except BlockingIOError:
                    break
                except OSError:  # ENOBUFS: records were dropped
                    self.overflowed = True
                    continue
                i = 0
                while i + 16 <= len(data):
                    length = struct.unpack_from("I", data, i)[0]
                    if length < 16:
                        break
                    for kind, value in _attrs(data[i + 20 : i + length]):
                        if kind != TASKSTATS_TYPE_AGGR_PID:
                            continue
                        for k, v in _attrs(value):
                            if k == TASKSTATS_TYPE_STATS and len(v) >= OFF_TGID + 4:
                                out.append(Record(v))
                    i += (length + 3) & ~3
        finally:
            self.sock.setblocking(True)
        return out


def summarize(records, pid):
    """(own cpu ns, own peak RSS KiB, direct children, threads) for process
    `pid`: its threads summed; children are distinct thread groups whose
    parent is `pid` (the programs it ran). The cpu figure is a lower bound:
    sum_exec_runtime is only brought up to date when the scheduler looks
    (tick, sleep, switch), so a short task that never slept reports ~0."""
    own = [r for r in records if r.tgid == pid]
    children = {r.tgid: r.comm for r in records if r.ppid == pid and r.tgid != pid}
    if not own:
        return None, None, children, 0
    return sum(r.cpu_ns for r in own), max(r.hiwater_kib for r in own), children, len(own)
