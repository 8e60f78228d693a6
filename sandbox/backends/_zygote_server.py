"""Per-slot spawn server for the bwrap backend (stdlib only; run as ``python3 -I -S <this file>``).

Why: moving a process into a cgroup costs ~10 ms (the kernel's cgroup_threadgroup_rwsem waits
for an RCU grace period), paid by every run. This small process joins the slot's cgroup
once, then forks each step's bwrap, which inherits the cgroup for free (fork, not migration).

argv: SOCKET_FD UID GID. Requests arrive on a SOCK_SEQPACKET socket: JSON {argv, env, fds}
plus the fds (SCM_RIGHTS) to place at the numbers in ``fds``; rlimits are set by the argv's
own launcher prefix. Replies: {"pid": N} (or {"error": ...}), then {"exit": N, "code": C}
when it ends (C as subprocess reports it: -signal if killed).
When the host goes away (EOF) every child is killed and the server exits.
"""

import json
import os
import select
import signal
import socket
import sys


def _spawn(req, fds):
    """posix_spawn (vfork-fast, no Python in the child) with the fds placed at their numbers."""
    for f in fds:
        os.set_inheritable(f, False)  # only the dup2'd copies reach the child
    actions = [(os.POSIX_SPAWN_DUP2, f, t) for f, t in zip(fds, req["fds"])]
    return os.posix_spawn(req["argv"][0], req["argv"], req["env"], file_actions=actions, setsid=True)


PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper():
    """Make orphaned descendants reparent to this server, which reaps them.

    When a killed bwrap leaves its inner init behind, the orphan would go to PID 1; in many
    containers PID 1 never reaps, and the zombies count against the slot uid's RLIMIT_NPROC
    until bwrap can no longer fork ("Can't fork for pid 1").
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def main():
    _become_subreaper()
    sock = socket.socket(fileno=int(sys.argv[1]))
    uid, gid = int(sys.argv[2]), int(sys.argv[3])
    if uid >= 0:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children = set()
    sock.send(b'{"ready": true}')
    while True:
        try:
            ready, _, _ = select.select([sock, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if pid in children:
                    children.discard(pid)
                    sock.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())
        if sock in ready:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 256)
            if not msg:
                for pid in children:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                os._exit(0)
            req = json.loads(msg)
            try:
                pid = _spawn(req, fds)
            except OSError as e:
                sock.send(json.dumps({"error": f"cannot start {req['argv'][0]}: {e}"}).encode())
                continue
            finally:
                for f in fds:
                    os.close(f)
            children.add(pid)
            sock.send(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    main()
