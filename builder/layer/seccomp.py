"""The seccomp filter of a RUN: docker's default profile compiled by libseccomp, then installed.

Why libseccomp, called through ctypes: a filter is a BPF program over *syscall numbers*, which
differ per architecture (and x86-64 also runs i386 and x32 code, each with its own table);
libseccomp (libseccomp2, the library runc itself uses, and a dependency of apt, so on every
Debian) holds those tables, resolves each name, and emits a correct, sorted filter.  Writing
the numbers and the BPF by hand would mean keeping ~450 numbers per architecture in pybuild.
The Python bindings (Debian's python3-seccomp, or pyseccomp on PyPI, a 2021 ctypes wrapper)
add nothing over the eight C functions used here, and the Debian one does not install into a
virtualenv.

``compile_filter`` runs in the sandbox child (errors become a clean SandboxError there) and
exports the program as bytes; ``Filter.install`` runs in the command's process just before it
drops to its user: one prctl, nothing but kernel calls after the fork.

Like runc (and so docker), a syscall *newer* than every one the profile names fails with
ENOSYS, not EPERM, so that a C library probing a new call (``fchmodat2``, ``cachestat``, …)
falls back to the old one instead of failing: six instructions ahead of the profile say so for
the native architecture (one filter, as runc installs it).  ``no_new_privs`` is left off, as
docker leaves it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass

from builder.errors import SandboxError
from builder.layer.seccomp_profile import CMP_MASKED_EQ, Rule

SCMP_ACT_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SCMP_FLTATR_CTL_OPTIMIZE = 8        # 2: a binary tree of syscalls, not a linear list
NR_SCMP_ERROR = -1                  # seccomp_syscall_resolve_name: a name libseccomp does not know

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

#: uname's machine → libseccomp's architecture names, native first, as docker's archMap.
ARCHES = {"x86_64": ("x86_64", "x86", "x32"), "aarch64": ("aarch64", "arm"),
          "s390x": ("s390x", "s390"), "ppc64le": ("ppc64le",), "riscv64": ("riscv64",)}
X32_SYSCALL_BIT = 0x40000000


def errno_action(code: int) -> int:
    return SECCOMP_RET_ERRNO | (code & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc = ctypes.CDLL(None, use_errno=True)
_lib: ctypes.CDLL | None = None


def libseccomp() -> ctypes.CDLL:
    """libseccomp.so.2, loaded once, with the signatures used here."""
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as e:
            raise SandboxError(f"seccomp: cannot load libseccomp.so.2 ({e}); every RUN needs it: "
                               f"install libseccomp2 (apt-get install libseccomp2)") from e
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_native.restype = ctypes.c_uint32
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _lib = lib
    return _lib


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def version() -> str:
    """libseccomp's version, e.g. ``2.5.4``."""
    lib = libseccomp()
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


@dataclass(frozen=True)
class Filter:
    """A compiled filter: a raw ``struct sock_filter`` array, ready for the kernel."""

    program: bytes
    rules: int                  # rules libseccomp took (names it does not know are left out)
    newest: int                 # the highest native syscall number the profile allows

    @property
    def instructions(self) -> int:
        return len(self.program) // 8

    def install(self) -> None:
        """Install the filter on the calling thread.  Needs CAP_SYS_ADMIN (no_new_privs stays
        off, as docker leaves it), so it runs before the process drops its capabilities."""
        buf = ctypes.create_string_buffer(self.program, len(self.program))
        prog = _SockFprog(self.instructions, ctypes.cast(buf, ctypes.c_void_p))
        if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
            err = ctypes.get_errno()
            raise SandboxError(f"seccomp: install the filter: {os.strerror(err)}")


def compile_filter(rules: list[Rule], machine: str | None = None) -> Filter:
    """The filter for ``rules`` on this machine: EPERM for anything not allowed, ENOSYS for
    a native syscall newer than any the rules allow."""
    lib = libseccomp()
    machine = machine or os.uname().machine
    ctx = lib.seccomp_init(errno_action(errno.EPERM))
    if not ctx:
        raise SandboxError("seccomp: seccomp_init failed")
    try:
        for extra in ARCHES.get(machine, ())[1:]:
            token = lib.seccomp_arch_resolve_name(extra.encode())
            if token:
                _check(lib.seccomp_arch_add(ctx, token), f"add architecture {extra}")
        lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)     # older libseccomp: ignored
        added, newest = 0, 0
        for rule in rules:
            nr = lib.seccomp_syscall_resolve_name(rule.name.encode())
            if nr == NR_SCMP_ERROR:
                continue        # newer than this libseccomp: not allowed, as runc does it
            action = SCMP_ACT_ALLOW if rule.errno is None else errno_action(rule.errno)
            _check(lib.seccomp_rule_add_array(ctx, action, nr, len(rule.args), _arg_array(rule)),
                   f"rule for {rule.name}")
            added += 1
            if rule.errno is None and nr > newest:
                newest = nr
        main = _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    return Filter(newer_than(newest, lib.seccomp_arch_native(), machine) + main, added, newest)


def _arg_array(rule: Rule) -> ctypes.Array[_ArgCmp]:
    """libseccomp's ``struct scmp_arg_cmp`` array: (arg, op, a, b); MASKED_EQ takes the mask
    as ``a`` and the value as ``b``, the other operators the value as ``a``."""
    checks = [_ArgCmp(c.index, c.op, c.mask, c.value) if c.op == CMP_MASKED_EQ else _ArgCmp(c.index, c.op, c.value, 0)
              for c in rule.args]
    return (_ArgCmp * max(len(checks), 1))(*checks)


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise SandboxError(f"seccomp: {what}: {os.strerror(-rc)}")


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("pybuild-seccomp", os.MFD_CLOEXEC)
    try:
        _check(lib.seccomp_export_bpf(ctx, fd), "export the filter")
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# -- the ENOSYS filter for syscalls newer than the profile ------------------------------------
_LD_W_ABS, _JEQ, _JGT, _JSET, _RET = 0x20, 0x15, 0x25, 0x45, 0x06
_NR, _ARCH = 0, 4           # offsets in struct seccomp_data


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def newer_than(newest: int, audit_arch: int, machine: str) -> bytes:
    """The filter's first instructions: on the native architecture, a syscall numbered above
    ``newest`` fails with ENOSYS at once; anything else goes on to the instruction after them
    (the main filter), as runc's generated stub does."""
    x32 = machine == "x86_64"
    return b"".join([
        _insn(_LD_W_ABS, _ARCH),
        _insn(_JEQ, audit_arch, 0, 4 if x32 else 3),          # another architecture: go on
        _insn(_LD_W_ABS, _NR),
        *([_insn(_JSET, X32_SYSCALL_BIT, 2, 0)] if x32 else []),   # x32 numbers: go on
        _insn(_JGT, newest, 0, 1),
        _insn(_RET, errno_action(errno.ENOSYS)),
    ])
