"""The seccomp filter on its own: loaded into a forked child of the test process, no sandbox around it."""

from __future__ import annotations

import ctypes
import errno
import os
import socket

from compute_to_data.runtime.supervisor import _install_seccomp
from compute_to_data.sandbox.seccomp import compile_filter


def _in_filtered_child(check) -> int:
    """Run check() in a forked child under the filter; its exit status is what check returned."""
    bpf = compile_filter()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            _install_seccomp(bpf)
            code = check()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_filter_refuses_inet_sockets_but_not_unix() -> None:
    def check() -> int:
        try:
            socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            return 1
        except OSError as exc:
            if exc.errno != errno.EAFNOSUPPORT:
                return 2
        a, b = socket.socketpair(socket.AF_UNIX)
        a.send(b"k")
        return 0 if b.recv(1) == b"k" else 3

    assert _in_filtered_child(check) == 0


def test_filter_refuses_ptrace_unshare_and_mount() -> None:
    def check() -> int:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.ptrace(0, 0, 0, 0) == 0:  # PTRACE_TRACEME
            return 1
        if ctypes.get_errno() != errno.EPERM:
            return 2
        if libc.unshare(0x10000000) == 0 or libc.mount(b"none", b"/mnt", b"tmpfs", 0, None) == 0:
            return 3
        return 0

    assert _in_filtered_child(check) == 0


def test_filter_is_classic_bpf() -> None:
    bpf = compile_filter()
    assert bpf and len(bpf) % 8 == 0  # struct sock_filter is 8 bytes
