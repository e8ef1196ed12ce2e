/* pbescape: escape attempts a busybox shell cannot make, for tests/test_escape.py.
 *
 * Built static by the test (gcc -static), copied into a busybox image, run inside a RUN.
 * Every command prints one line "CMD: ok" (the attempt worked: an escape, exit 0) or
 * "CMD: <strerror> (ERRNO-NAME)" (exit 1); where an attempt reads a host file it prints what
 * it read after "read: ".  Nothing here writes to a device, loads code into the kernel or
 * changes the host on success beyond what the test's sentinel checks and restores.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>

static const char *errname(int e) {
    switch (e) {
    case EPERM: return "EPERM";       case ENOENT: return "ENOENT";   case ESRCH: return "ESRCH";
    case EIO: return "EIO";           case ENXIO: return "ENXIO";     case EBADF: return "EBADF";
    case EACCES: return "EACCES";     case EFAULT: return "EFAULT";   case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";     case ENODEV: return "ENODEV";   case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";     case EROFS: return "EROFS";     case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ESTALE: return "ESTALE";     case ENOKEY: return "ENOKEY";   case E2BIG: return "E2BIG";
    case ENOEXEC: return "ENOEXEC";   case ENOTTY: return "ENOTTY";   case EAGAIN: return "EAGAIN";
    default: return "E?";
    }
}

static int report(const char *what, long rc) {
    if (rc < 0) {
        int e = errno;
        printf("%s: %s (%s)\n", what, strerror(e), errname(e));
        return 1;
    }
    printf("%s: ok\n", what);
    return 0;
}

static void cat_fd(int fd) {
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n >= 0) {
        buf[n] = 0;
        printf("read: %s\n", buf);
    } else {
        printf("read: failed: %s\n", strerror(errno));
    }
}

/* chroot into a new subdir without entering it, climb with "..", chroot there, read PATH */
static int chroot_escape(const char *path) {
    mkdir("/.pbescape", 0700);
    if (report("chroot into a subdir", chroot("/.pbescape")) != 0) return 1;
    for (int i = 0; i < 64; i++) chdir("..");
    if (report("chroot to the top", chroot(".")) != 0) return 1;
    int fd = open(path, O_RDONLY);
    if (report("open", fd) != 0) return 1;
    cat_fd(fd);
    return 0;
}

/* "shocker": a file handle for inode 2 (the root of an ext4 file system) of the file system
 * that holds FSFILE, opened with open_by_handle_at, then REL read below it */
static int shocker(const char *fsfile, const char *rel) {
    struct { struct file_handle h; unsigned char bytes[128]; } fh;
    int mount_id;
    fh.h.handle_bytes = 128;
    if (report("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, fsfile, &fh.h, &mount_id, 0)) != 0)
        return 1;
    int mfd = open(fsfile, O_RDONLY);
    fh.h.handle_bytes = 8;
    fh.h.handle_type = 1;                       /* FILEID_INO32_GEN */
    uint32_t ino_gen[2] = {2, 0};
    memcpy(fh.h.f_handle, ino_gen, 8);
    int root = syscall(SYS_open_by_handle_at, mfd, &fh.h, O_RDONLY | O_DIRECTORY);
    if (report("open_by_handle_at", root) != 0) return 1;
    int fd = openat(root, rel, O_RDONLY);
    if (report("openat", fd) != 0) return 1;
    cat_fd(fd);
    return 0;
}

struct call { const char *name; long nr; };
static const struct call CALLS[] = {
    {"mount", SYS_mount}, {"umount2", SYS_umount2}, {"pivot_root", SYS_pivot_root},
    {"unshare", SYS_unshare}, {"setns", SYS_setns}, {"clone3", SYS_clone3},
    {"kexec_load", SYS_kexec_load}, {"kexec_file_load", SYS_kexec_file_load},
    {"init_module", SYS_init_module}, {"finit_module", SYS_finit_module},
    {"delete_module", SYS_delete_module}, {"reboot", SYS_reboot},
    {"swapon", SYS_swapon}, {"swapoff", SYS_swapoff}, {"keyctl", SYS_keyctl},
    {"add_key", SYS_add_key}, {"request_key", SYS_request_key}, {"bpf", SYS_bpf},
    {"perf_event_open", SYS_perf_event_open}, {"open_by_handle_at", SYS_open_by_handle_at},
    {"iopl", SYS_iopl}, {"ioperm", SYS_ioperm}, {"acct", SYS_acct},
    {"settimeofday", SYS_settimeofday}, {"clock_settime", SYS_clock_settime},
    {"syslog", SYS_syslog}, {"userfaultfd", SYS_userfaultfd}, {"quotactl", SYS_quotactl},
    {"fsopen", SYS_fsopen}, {"fsmount", SYS_fsmount}, {"fspick", SYS_fspick},
    {"open_tree", SYS_open_tree}, {"move_mount", SYS_move_mount}, {"mount_setattr", SYS_mount_setattr},
    {"sethostname", SYS_sethostname}, {"setdomainname", SYS_setdomainname},
    {"mbind", SYS_mbind}, {"set_mempolicy", SYS_set_mempolicy}, {"kcmp", SYS_kcmp},
    {"pidfd_getfd", SYS_pidfd_getfd}, {"process_madvise", SYS_process_madvise},
    {"lookup_dcookie", SYS_lookup_dcookie}, {"uselib", SYS_uselib},
    {"ustat", SYS_ustat}, {"sysfs", SYS_sysfs}, {"nfsservctl", SYS_nfsservctl},
    {"name_to_handle_at", SYS_name_to_handle_at}, {"chroot", SYS_chroot},
    {"ptrace", SYS_ptrace}, {"process_vm_readv", SYS_process_vm_readv},
    {"fanotify_init", SYS_fanotify_init}, {"io_uring_setup", SYS_io_uring_setup},
    {"memfd_secret", 447}, {"futex_waitv", 449}, {"set_mempolicy_home_node", 450},
    {"cachestat", 451}, {"fchmodat2", 452}, {"nr_500", 500},
};

/* each NAME called with every argument -1 (bad pointers, fds and flags: an allowed call fails
 * with EFAULT/EBADF/EINVAL/…, a denied one with seccomp's errno); prints NAME=ERRNO-NAME */
static int probe(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const struct call *c = NULL;
        for (size_t j = 0; j < sizeof CALLS / sizeof *CALLS; j++)
            if (strcmp(CALLS[j].name, argv[i]) == 0) c = &CALLS[j];
        if (!c) { printf("%s=unknown\n", argv[i]); continue; }
        long rc = syscall(c->nr, -1L, -1L, -1L, -1L, -1L, -1L);
        printf("%s=%s\n", c->name, rc < 0 ? errname(errno) : "ok");
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) { fprintf(stderr, "usage: pbescape CMD [ARG...]\n"); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "probe")) return probe(argc - 2, argv + 2);
    if (!strcmp(cmd, "whoami")) {      /* planted setuid: who does it run as? */
        printf("whoami: euid=%d\n", (int)geteuid());
        return 0;
    }
    if (!strcmp(cmd, "chroot-escape") && argc == 3) return chroot_escape(argv[2]);
    if (!strcmp(cmd, "shocker") && argc == 4) return shocker(argv[2], argv[3]);
    if (!strcmp(cmd, "packet"))
        return report("socket(AF_PACKET)", socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)));
    if (!strcmp(cmd, "raw"))
        return report("socket(AF_INET, SOCK_RAW)", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    if (!strcmp(cmd, "ptrace") && argc == 3) {
        pid_t pid = atoi(argv[2]);
        long rc = ptrace(PTRACE_ATTACH, pid, NULL, NULL);
        int r = report("ptrace(PTRACE_ATTACH)", rc);
        if (rc == 0) { waitpid(pid, NULL, __WALL); ptrace(PTRACE_DETACH, pid, NULL, NULL); }
        return r;
    }
    if (!strcmp(cmd, "keyctl"))
        return report("keyctl(GET_KEYRING_ID, user keyring)",
                      syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0));
    if (!strcmp(cmd, "bpf")) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.map_type = BPF_MAP_TYPE_ARRAY;
        attr.key_size = 4; attr.value_size = 4; attr.max_entries = 1;
        return report("bpf(BPF_MAP_CREATE)", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
    }
    if (!strcmp(cmd, "perf")) {
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.type = PERF_TYPE_SOFTWARE; attr.size = sizeof attr; attr.config = PERF_COUNT_SW_CPU_CLOCK;
        return report("perf_event_open(all processes, cpu 0)", syscall(SYS_perf_event_open, &attr, -1, 0, -1, 0));
    }
    if (!strcmp(cmd, "kexec"))   /* flag 0x100 is invalid: allowed, the call fails with EINVAL */
        return report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0x100UL));
    if (!strcmp(cmd, "module"))  /* fd -1: allowed, the call fails with EBADF */
        return report("finit_module", syscall(SYS_finit_module, -1, "", 0));
    if (!strcmp(cmd, "unshare") && argc == 3) {
        int flags = !strcmp(argv[2], "user") ? CLONE_NEWUSER : !strcmp(argv[2], "mount") ? CLONE_NEWNS
                  : !strcmp(argv[2], "net") ? CLONE_NEWNET : CLONE_NEWPID;
        return report("unshare", unshare(flags));
    }
    if (!strcmp(cmd, "setns") && argc == 3) {
        int fd = open(argv[2], O_RDONLY);
        if (report("open", fd) != 0) return 1;
        return report("setns", setns(fd, 0));
    }
    fprintf(stderr, "pbescape: unknown command %s\n", cmd);
    return 2;
}
