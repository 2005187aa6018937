"""The seccomp filter every sandboxed process runs under, compiled to classic BPF by libseccomp (via pyseccomp).

Default allow, with a deny list: namespaces and the user namespace are already separate, so the filter removes the
kernel surface an algorithm never needs and that escapes have used (ptrace, mounts, module loading, keyrings, bpf,
perf, userfaultfd, io_uring) and every socket family but AF_UNIX (no network even if a namespace were shared).
clone3 answers ENOSYS so libc falls back to clone, whose flags can be checked: no new namespaces from inside.
"""

from __future__ import annotations

import errno
import socket
import tempfile

from compute_to_data.sandbox.base import SandboxUnavailable

DENIED_SYSCALLS = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "setns",
    "unshare",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "open_by_handle_at",
    "name_to_handle_at",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "personality",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "syslog",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "iopl",
    "ioperm",
    "vhangup",
    "lookup_dcookie",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)

# clone flags that create namespaces (CLONE_NEWNS .. CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME)
_CLONE_NS_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080)


def _library():
    try:
        import pyseccomp
    except ImportError as exc:
        raise SandboxUnavailable(f"seccomp: the pyseccomp package is missing ({exc}); pip install pyseccomp") from exc
    return pyseccomp


def compile_filter() -> bytes:
    """The filter as classic BPF bytes, ready for `bwrap --seccomp FD`."""
    sc = _library()
    try:
        flt = sc.SyscallFilter(defaction=sc.ALLOW)
        for name in DENIED_SYSCALLS:
            try:
                flt.add_rule(sc.ERRNO(errno.EPERM), name)
            except (ValueError, OSError, RuntimeError):
                continue  # not a syscall on this architecture
        flt.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
        flt.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socketpair", sc.Arg(0, sc.NE, socket.AF_UNIX))
        for bit in _CLONE_NS_FLAGS:
            flt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, bit, bit))
        flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        with tempfile.TemporaryFile() as out:
            flt.export_bpf(out)
            out.seek(0)
            return out.read()
    except OSError as exc:
        raise SandboxUnavailable(
            f"seccomp: libseccomp could not build the filter ({exc}); install libseccomp2"
        ) from exc
