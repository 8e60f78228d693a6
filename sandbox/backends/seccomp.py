"""A seccomp filter for sandboxed steps (bwrap ``--seccomp FD``): deny what no test run needs.

Why: namespaces and dropped capabilities already keep the program off the host, but from
inside the sandbox a program could still inspect or steer other processes of its own uid (the
harness, its init) with ptrace/process_vm_*/pidfd_getfd, use kernel interfaces with a long
record of local exploits (io_uring, bpf, perf_event_open, userfaultfd), or park state in kernel
keyrings (keyctl/add_key/request_key) that outlives the run. Those calls fail with EPERM; the
32-bit and x32 ABIs, which would bypass a filter keyed on x86-64 numbers, are denied whole.

The filter is classic BPF over ``struct seccomp_data`` (nr at offset 0, arch at offset 4),
written out by hand so that no libseccomp is needed; x86-64 and aarch64 only (None elsewhere).
"""

from __future__ import annotations

import errno
import os
import platform
import struct
import tempfile
import threading

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_BIT = 0x40000000

# name -> (x86-64 number, aarch64 number)
DENIED = {
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438),
    "kcmp": (312, 272),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
}

_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def program(arch: str | None = None) -> bytes | None:
    """The filter as raw ``struct sock_filter`` records, or None for an unsupported machine."""
    arch = arch or platform.machine()
    if arch not in AUDIT_ARCH:
        return None
    col = 0 if arch == "x86_64" else 1
    nrs = sorted({v[col] for v in DENIED.values()})
    deny = _RET_ERRNO | errno.EPERM
    body = [_insn(_LD_W_ABS, 0, 0, 0)]  # A = nr
    if arch == "x86_64":
        body.append(("X32", 0))  # placeholder: jge X32_BIT -> deny
    for nr in nrs:
        body.append(("EQ", nr))
    out: list[bytes] = [_insn(_LD_W_ABS, 0, 0, 4)]  # A = arch
    # After the arch check: body, then "allow", then "deny" (the last instruction).
    # Other ABI -> deny: skip the body and "allow" (jump offsets count from the next instruction).
    out.append(_insn(_JEQ_K, 0, len(body) + 1, AUDIT_ARCH[arch]))
    for i, item in enumerate(body):
        if isinstance(item, bytes):
            out.append(item)
            continue
        to_deny = len(body) - i  # skip the rest of the body and "allow"
        kind, k = item
        out.append(_insn(_JGE_K if kind == "X32" else _JEQ_K, to_deny, 0, X32_BIT if kind == "X32" else k))
    out.append(_insn(_RET_K, 0, 0, _RET_ALLOW))
    out.append(_insn(_RET_K, 0, 0, deny))
    return b"".join(out)


_path: str | None | bool = False
_lock = threading.Lock()


def filter_path() -> str | None:
    """A private file holding this machine's filter (written once per process), or None."""
    global _path
    with _lock:
        if _path is False:
            prog = program()
            if prog is None:
                _path = None
            else:
                fd, path = tempfile.mkstemp(prefix="codecorpus-seccomp-", suffix=".bpf")
                with os.fdopen(fd, "wb") as f:
                    f.write(prog)
                import atexit

                atexit.register(lambda: os.path.exists(path) and os.unlink(path))
                _path = path
        return _path
