/* SPDX-License-Identifier: Apache-2.0 */
/* The one ABI shared by the BPF programs (bpf/<concern>.bpf.c) and userspace: map keys and values,
 * ring-buffer event layouts, counter indexes. Fixed-size arrays and __u32/__u64 only. */
#ifndef LOCKFERRY_EVENTS_H
#define LOCKFERRY_EVENTS_H

#if !defined(__VMLINUX_H__) && !defined(__bpf__)
#include <linux/types.h>
#endif

/* Every value a field below can carry is defined here once, for the BPF programs and userspace
 * alike: nothing that crosses a map or the ring buffer is spelled as a literal elsewhere. */

/* Bump when any layout below changes; every event carries it so userspace refuses a mismatch. */
#define LF_EVENTS_VERSION 2

#define LF_COMM_LEN 16
/* A file name inside a watched directory (NAME_MAX + NUL). */
#define LF_NAME_LEN 256
/* Longest path the kernel side reads from a rename/unlink argument; must be a power of two. */
#define LF_PATH_LEN 512
/* Longest relative path from a base directory to a watched directory (watched_paths key). */
#define LF_REL_LEN 256

/* Every ring-buffer record starts with this header; `kind` selects the struct that follows.
 * Later concerns (lock grants from posix_lock_inode) add kinds and structs, never change this. */
struct lf_event_header {
  __u16 version; /* LF_EVENTS_VERSION */
  __u16 kind;    /* enum lf_event_kind */
  __u32 size;    /* sizeof the whole event struct, for forward compatibility checks */
  __u64 ts_ns;   /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
  __u32 pid;     /* tgid of the process */
  __u32 tid;
  char comm[LF_COMM_LEN];
};

enum lf_event_kind {
  /* Monitor-directory file events (struct lf_file_event), statmon_watch.bpf.c. */
  /* Opens: FMODE_CREATED moved between kernels (1 << 20, later 1 << 21), so "created" is only
   * claimed when O_EXCL proves it (statd's nsm_insert_monitored_host). The fd is now tracked. */
  LF_EV_FILE_CREATED = 1, /* open(O_CREAT|O_EXCL) succeeded: a new file */
  LF_EV_FILE_UPDATED = 2, /* open with O_CREAT or O_TRUNC, file possibly existed */
  LF_EV_FILE_CLOSED = 3,  /* the tracked fd was closed: the content is complete */
  LF_EV_FILE_RENAMED = 4, /* rename; old and/or new side lies in a watched directory */
  LF_EV_FILE_DELETED = 5, /* unlink of a file in a watched directory */
  /* Lock manager grants and releases (struct lf_lock_event), lock_watch.bpf.c. Only
   * successful ones are emitted; failed attempts are only counted. */
  LF_EV_LOCK_GRANTED = 16,  /* F_RDLCK/F_WRLCK set on [start, end] for owner */
  LF_EV_LOCK_RELEASED = 17, /* F_UNLCK of [start, end] for owner (explicit, or on close) */
  /* The kernel side made hdr.pid a lock manager on exec/rename (struct lf_event_header alone):
   * userspace verifies it, and with hook set "uprobe" attaches its uprobes, without waiting for
   * the next /proc scan. */
  LF_EV_MANAGER_ADDED = 18,
};

/* One file in a watched directory changed. `dir_id` names the directory (watched_dirs value);
 * 0 means "not in a watched directory" (the other side of a rename). */
struct lf_file_event {
  struct lf_event_header hdr;
  __u32 dir_id;               /* new side for renames */
  __u32 old_dir_id;           /* LF_EV_FILE_RENAMED: old side; else 0 */
  __u32 open_flags;           /* CREATED/TRUNCATED/CLOSED: flags of the open (LF_O_*) */
  __u32 rename_flags;         /* LF_EV_FILE_RENAMED: LF_RENAME_* */
  __s64 ret;                  /* the syscall's return value (fd for opens) */
  char name[LF_NAME_LEN];     /* file name inside dir_id (for renames: the new name) */
  char old_name[LF_NAME_LEN]; /* LF_EV_FILE_RENAMED: the old name */
};

/* lf_file_event.open_flags: open(2) flags (include/uapi/asm-generic/fcntl.h; the same values on
 * x86_64 and arm64). O_EXCL tells statd's create (nsm_insert_monitored_host) from a rewrite. */
#define LF_O_WRONLY 00000001
#define LF_O_CREAT 00000100
#define LF_O_EXCL 00000200
#define LF_O_TRUNC 00001000

/* lf_file_event.rename_flags: renameat2(2) flags (include/uapi/linux/fs.h). */
#define LF_RENAME_NOREPLACE 1
#define LF_RENAME_EXCHANGE 2 /* both names stay: each now names the other's old file */
#define LF_RENAME_WHITEOUT 4

/* Watched directories by identity. dev is the kernel's encoding (MKDEV: major << 20 | minor). */
struct lf_dir_key {
  __u64 dev;
  __u64 ino;
};

struct lf_dir_value {
  __u32 dir_id; /* userspace's id for this directory; never reused within one run */
  __u32 pad;
};

/* How rename/unlink path strings are resolved without a dentry: for each watched directory W
 * and each ancestor A of W (and W itself), userspace stores {A's dev and ino, the relative path
 * from A to W} -> W. The kernel side takes the base directory of a path (the task's root for
 * absolute paths, the dfd or cwd for relative ones), cuts the last component, and looks up
 * {base, dirname}. So "/var/lib/nfs/sm/x", "sm/x" from /var/lib/nfs and "x" from the monitor
 * directory all resolve with one hash lookup. Paths with "..", "//" or "./" do not match. */
struct lf_path_key {
  __u64 dev;
  __u64 ino;
  char rel[LF_REL_LEN]; /* no leading or trailing '/', zero-padded; "" = the directory itself */
};

/* ---- lock capture (bpf/lock_watch.bpf.c) ---- */

/* Packed path of a locked file: NUL-terminated names, the file's own name first, then its
 * parents up to the root of the lock manager's mount namespace (userspace reverses them). */
#define LF_LOCK_PATH_LEN 1024
/* Most path components the kernel side walks (userspace may ask for fewer). */
#define LF_LOCK_PATH_DEPTH 16
/* NLM client host name (kernel lockd's nlm_host.h_name), when the kernel tells it. */
#define LF_HOST_LEN 64
/* An address as the kernel's struct sockaddr_in / sockaddr_in6 holds it (family first, host
 * order; then port and address, network order): sizeof(struct sockaddr_in6). */
#define LF_SOCKADDR_LEN 28

/* Which kernel hook saw the change (struct lf_lock_event.source). */
enum lf_lock_source {
  LF_LOCK_SRC_POSIX_LOCK_INODE = 1,   /* filelock:posix_lock_inode: set/unlock, incl. OFD */
  LF_LOCK_SRC_LOCKS_REMOVE_POSIX = 2, /* filelock:locks_remove_posix: release on close */
  /* Kernel lockd's own functions (hook set "kprobe", where lockd is the only lock manager). */
  LF_LOCK_SRC_LOCKD_LOCK = 3,         /* nlmsvc_lock returned nlm_granted (LOCK, reclaims) */
  LF_LOCK_SRC_LOCKD_UNLOCK = 4,       /* nlmsvc_unlock returned nlm_granted (UNLOCK) */
  LF_LOCK_SRC_LOCKD_GRANTED = 5,      /* a blocked lock granted later (its GRANTED_MSG call) */
  LF_LOCK_SRC_LOCKD_UNLOCK_FILES = 6, /* nlm_unlock_files: all of one owner's ranges on a file
                                       * (client reboot, FREE_ALL, lockd shutdown): 0-EOF */
  /* The C library's calls in a userspace manager (hook set "uprobe"). */
  LF_LOCK_SRC_MANAGER_FCNTL = 7, /* fcntl(F_SETLK[W] / F_OFD_SETLK[W]) returned 0 */
  LF_LOCK_SRC_MANAGER_CLOSE = 8, /* close() of a file whose inode had locks: the owner's 0-EOF */
};

/* struct lf_lock_event.path_flags */
#define LF_PATH_COMPLETE 1     /* the walk reached the root: path is absolute */
#define LF_PATH_TRUNCATED 2    /* more components than the depth or buffer allowed */
#define LF_PATH_DISCONNECTED 4 /* an anonymous dentry (e.g. from open_by_handle_at): partial */

/* lf_lock_event.type: the lock's type (include/uapi/asm-generic/fcntl.h). */
#define LF_F_RDLCK 0
#define LF_F_WRLCK 1
#define LF_F_UNLCK 2

/* lf_lock_event.fl_flags (include/linux/filelock.h). FL_ACCESS operations (tests for a
 * conflict) change nothing and are only counted, never emitted. */
#define LF_FL_POSIX 1
#define LF_FL_ACCESS 8
#define LF_FL_CLOSE 64    /* released because the owner closed the file */
#define LF_FL_OFDLCK 1024 /* an open file description lock (F_OFD_SETLK), owned by the file */

/* lf_lock_event.end of a lock that reaches the end of the file: OFFSET_MAX (LLONG_MAX). */
#define LF_OFFSET_MAX 0x7fffffffffffffffLL

/* One successful lock grant or release by a lock manager process. */
struct lf_lock_event {
  struct lf_event_header hdr;     /* pid = tgid of the lock manager, comm = its thread's comm */
  char manager_comm[LF_COMM_LEN]; /* comm of the manager's thread-group leader */
  __u64 dev; /* inode's superblock device, kernel encoding (major << 20 | minor) */
  __u64 ino;
  __u64 owner;     /* fl_owner: files_struct (fcntl), struct file (OFD), nlm_lockowner (lockd) */
  __s64 start;     /* fl_start */
  __s64 end;       /* fl_end, inclusive; LF_OFFSET_MAX = to end of file */
  __s32 ret;       /* the kernel's result (always 0 in emitted events) */
  __s32 fl_pid;    /* fl_pid: the locking tgid (OFD locks too; only /proc/locks shows them as -1) */
  __u32 fl_flags;  /* LF_FL_* */
  __u8 type;       /* LF_F_RDLCK, LF_F_WRLCK, LF_F_UNLCK */
  __u8 source;     /* enum lf_lock_source */
  __u8 path_depth; /* names in `path` */
  __u8 path_flags; /* LF_PATH_* */
  __u32 path_len;  /* bytes of `path` used */
  __u32 pad;
  char path[LF_LOCK_PATH_LEN];
  char nlm_host[LF_HOST_LEN]; /* "" unless kernel lockd with BTF for its nlm_host */
  /* Inode number of the network namespace the lock was granted in (what /proc/<pid>/ns/net
   * names): for kernel lockd its NLM host's (one lockd thread serves every namespace's NFS
   * server), else the locking process's. 0 = not known (another kernel thread, no lockd BTF).
   * Lets the lockferryd of one of several NFS servers sharing a kernel keep only its own. */
  __u32 netns;
  __u32 netns_pad;
  /* Kernel lockd, as nlm_host: the NLM client's address (nlm_host.h_addr) and the server address
   * it sent the request to (h_srcaddr: which service IP it locked through). All zero (family 0)
   * when not known. */
  __u8 nlm_client_addr[LF_SOCKADDR_LEN];
  __u8 nlm_server_addr[LF_SOCKADDR_LEN];
  __u32 client_source; /* enum lf_client_source: who named nlm_host */
  __u32 client_pad;
};

/* Who named the NLM client of a lock event (struct lf_lock_event.client_source). */
enum lf_client_source {
  LF_CLIENT_SRC_NONE = 0,
  LF_CLIENT_SRC_NLM_HOST = 1, /* kernel lockd: the lock owner's nlm_host */
  LF_CLIENT_SRC_GANESHA = 2,  /* NFS-Ganesha: caller_name of the NLM request this thread serves */
};

/* NFS-Ganesha's NLM handlers (nlm4_Lock, nlm4_Unlock, nlm4_Cancel in libganesha_nfsd.so) take
 * the decoded XDR arguments first: `nfs_arg_t *` whose union member starts with the protocol's
 * struct (nlm4_lockargs: netobj cookie, bool_t block, bool_t exclusive, nlm4_lock alock, ...;
 * nlm4_unlockargs: netobj cookie, nlm4_lock alock), and nlm4_lock starts with `char
 * *caller_name`. netobj is {u_int n_len; char *n_bytes} (16 bytes on LP64). So the client's
 * name pointer is at these offsets from the first argument. */
#define LF_GANESHA_LOCKARGS_CALLER 24   /* nlm4_lockargs, nlm4_cancargs */
#define LF_GANESHA_UNLOCKARGS_CALLER 16 /* nlm4_unlockargs */
/* Threads serving an NLM request at once (map "nlm_callers", key: pid_tgid). */
#define LF_NLM_CALLERS_MAX 4096

/* Lock manager processes the lock programs record (map "lock_managers", key: tgid). Userspace
 * keeps it current from /proc; the exec/rename programs add a process the moment it takes a
 * configured name (map "manager_names", key: comm zero-padded to LF_COMM_LEN). */
struct lf_manager_value {
  __u32 added_by; /* enum lf_manager_added_by */
  __u32 pad;
};

/* Who put a process into lock_managers (struct lf_manager_value.added_by). */
enum lf_manager_added_by {
  LF_ADDED_BY_SCAN = 1,   /* userspace's /proc scan */
  LF_ADDED_BY_EXEC = 2,   /* tracepoint sched/sched_process_exec */
  LF_ADDED_BY_RENAME = 3, /* tracepoint task/task_rename */
};

/* Value of a manager_names entry: its presence is what counts. */
#define LF_MANAGER_NAME_PRESENT 1

/* Words of the lock programs' manager pre-filter (global "manager_bits" in lock_watch's .bss):
 * one bit per tgid below 4194304 (PID_MAX_LIMIT on 64-bit), 512 KiB. Userspace sets a manager's
 * bit (atomically: the kernel side sets bits too) BEFORE adding it to lock_managers and never
 * clears bits. Must be a power of two. */
#define LF_MANAGER_BITMAP_WORDS 65536

/* Per-CPU counters of the lock programs (array map "lock_counters"). */
enum lf_lock_counter {
  LF_LCNT_HITS = 0,     /* lock operations by a lock manager process (passed the tgid filter) */
  LF_LCNT_GRANTS = 1,   /* LF_EV_LOCK_GRANTED emitted */
  LF_LCNT_RELEASES = 2, /* LF_EV_LOCK_RELEASED emitted */
  LF_LCNT_FAILED = 3,   /* not granted (conflict, deferred, ENOLCK) or test-only: not emitted */
  LF_LCNT_DROPS = 4,    /* ring buffer full: an event was lost, the lock table may be wrong */
  LF_LCNT_PATH_TRUNCATED = 5, /* path longer than the depth/buffer, or disconnected */
  LF_LCNT_MANAGER_ADDS = 6,   /* manager processes added in the kernel (exec/rename) */
  LF_LCNT_IMPOSTORS = 7,      /* processes that took a manager's name but are not root (nor a
                               * kernel thread): not added */
  LF_LCNT_MAX = 8,
};

/* Per-CPU counters (array map "counters"), summed over CPUs by userspace. */
enum lf_counter {
  LF_CNT_HITS = 0,         /* syscalls that passed the cheap filters (flags, success) */
  LF_CNT_MATCHED = 1,      /* ... whose directory is watched */
  LF_CNT_EMITS = 2,        /* events put on the ring buffer */
  LF_CNT_DROPS = 3,        /* ring buffer full: an event was lost, userspace must rescan */
  LF_CNT_UNRESOLVED = 4,   /* a path could not be read or was too long to resolve */
  LF_CNT_FD_UNTRACKED = 5, /* a close was seen for a tracked fd that now holds another file */
  LF_CNT_MAX = 8,
};

#endif /* LOCKFERRY_EVENTS_H */
