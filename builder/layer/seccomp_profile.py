"""docker's default seccomp profile, as data: which system calls a RUN may make (pure).

The source is moby's ``profiles/seccomp/default.json`` (the profile every ``docker run`` and
every classic-builder RUN gets).  Its shape is kept: an *allow list*; anything else fails with
EPERM (``defaultErrnoRet: 1``); a few calls are allowed only with certain arguments (``socket``
but not AF_VSOCK, ``personality`` for five values, ``clone`` without namespace flags), and
some only when the container holds a capability (``mount`` needs CAP_SYS_ADMIN, ``reboot``
CAP_SYS_BOOT, ``chroot`` CAP_SYS_CHROOT, …), or on one architecture.  ``rules()`` resolves
those conditions for the capabilities a RUN keeps (layer/capabilities.py) and the machine, and
returns the rules layer/seccomp.py compiles with libseccomp.

What the list leaves out is the point: mount and the new mount API, umount, pivot_root,
unshare, setns, clone with namespace flags, kexec_load/kexec_file_load, init_module,
finit_module, delete_module, reboot, swapon/swapoff, keyctl/add_key/request_key (the kernel
keyring is not namespaced), bpf, perf_event_open, open_by_handle_at (the "shocker" escape),
iopl/ioperm, acct, settimeofday, syslog, userfaultfd, … — each fails with EPERM.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

#: Allowed for every container, whatever its capabilities (the profile's first group).
ALWAYS = tuple("""
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl
fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv
futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32
getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom
getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid
getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy
io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen
listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier
memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2
mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl
pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction
rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile
sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32
setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt
set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown
sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64
statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
ptrace process_vm_readv process_vm_writev
""".split())
# (the last line: the profile allows these from Linux 4.8 on, where ptrace can no longer be
# used to get around seccomp; pybuild needs Linux 5.6 anyway)

#: Allowed only on some architectures (docker's names: amd64, arm64, …).
BY_ARCH = {
    "amd64": ("arch_prctl", "modify_ldt"),
    "x86": ("modify_ldt",),
    "arm64": ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"),
    "ppc64le": ("sync_file_range2", "swapcontext"),
    "s390x": ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
    "riscv64": ("riscv_flush_icache",),
}

#: Allowed only to a container that holds the capability.
BY_CAPABILITY = {
    "SYS_ADMIN": ("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                  "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
                  "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
                  "umount2", "unshare"),
    "SYS_BOOT": ("reboot",),
    "SYS_CHROOT": ("chroot",),
    "SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "SYS_PACCT": ("acct",),
    "SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"),
    "SYS_RAWIO": ("iopl", "ioperm"),
    "SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "SYS_TTY_CONFIG": ("vhangup",),
    "SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "SYSLOG": ("syslog",),
    "BPF": ("bpf",),
    "PERFMON": ("perf_event_open",),
    "DAC_READ_SEARCH": ("open_by_handle_at",),
}

AF_VSOCK = 40
#: personality(2) values the profile allows: PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE, both, query.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
#: CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET: no new namespaces.
CLONE_NAMESPACE_FLAGS = 0x7E020000

# libseccomp's comparison operators (enum scmp_compare)
CMP_NE, CMP_EQ, CMP_MASKED_EQ = 1, 4, 7


@dataclass(frozen=True)
class ArgCheck:
    """Argument ``index`` compared by ``op`` with ``value`` (for MASKED_EQ: ``arg & mask == value``)."""

    index: int
    op: int
    value: int
    mask: int = 0


@dataclass(frozen=True)
class Rule:
    """One syscall: allowed (``errno`` None) or failing with ``errno``; with ``args`` only
    when every check holds."""

    name: str
    errno: int | None = None
    args: tuple[ArgCheck, ...] = ()


#: uname's machine → docker's architecture name.
DOCKER_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x",
               "riscv64": "riscv64", "i686": "x86", "i386": "x86", "armv7l": "arm"}


def rules(capabilities: frozenset[str], machine: str) -> list[Rule]:
    """docker's default profile for a container holding ``capabilities`` (names without
    ``CAP_``) on ``machine`` (``os.uname().machine``), as rules; anything not named is EPERM."""
    arch = DOCKER_ARCH.get(machine, machine)
    names = set(ALWAYS) | set(BY_ARCH.get(arch, ()))
    for cap, calls in BY_CAPABILITY.items():
        if cap in capabilities:
            names |= set(calls)
    out = [Rule(name) for name in sorted(names)]
    out.append(Rule("socket", args=(ArgCheck(0, CMP_NE, AF_VSOCK),)))
    out += [Rule("personality", args=(ArgCheck(0, CMP_EQ, p),)) for p in PERSONALITIES]
    if "SYS_ADMIN" not in capabilities:
        # s390 passes clone's flags second; clone3 carries them in a struct seccomp cannot
        # read, so it fails with ENOSYS and the C library falls back to clone
        flags_arg = 1 if arch == "s390x" else 0
        out.append(Rule("clone", args=(ArgCheck(flags_arg, CMP_MASKED_EQ, 0, CLONE_NAMESPACE_FLAGS),)))
        out.append(Rule("clone3", errno=errno.ENOSYS))
    return out


def allowed_names(capabilities: frozenset[str], machine: str) -> set[str]:
    """The syscalls allowed unconditionally (for ``pybuild info`` and the tests)."""
    return {r.name for r in rules(capabilities, machine) if r.errno is None and not r.args}
