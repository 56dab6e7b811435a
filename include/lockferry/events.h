/* SPDX-License-Identifier: Apache-2.0 */
/* The one ABI shared by the BPF programs (bpf/<concern>.bpf.c) and userspace: map keys and values,
 * ring-buffer event layouts, counter indexes. Fixed-size arrays and __u32/__u64 only. */
#ifndef LOCKFERRY_EVENTS_H
#define LOCKFERRY_EVENTS_H

#if !defined(__VMLINUX_H__) && !defined(__bpf__)
#include <linux/types.h>
#endif

/* Bump when any layout below changes; every event carries it so userspace refuses a mismatch. */
#define LF_EVENTS_VERSION 1

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
	LF_EV_FILE_CREATED = 1,     /* open(O_CREAT|O_EXCL) succeeded: a new file */
	LF_EV_FILE_UPDATED = 2,     /* open with O_CREAT or O_TRUNC, file possibly existed */
	LF_EV_FILE_CLOSED = 3,      /* the tracked fd was closed: the content is complete */
	LF_EV_FILE_RENAMED = 4,     /* rename; old and/or new side lies in a watched directory */
	LF_EV_FILE_DELETED = 5,     /* unlink of a file in a watched directory */
	/* Reserved for lock capture (struct lf_lock_event, a later bpf/lock_watch.bpf.c). */
	LF_EV_LOCK_GRANTED = 16,
	LF_EV_LOCK_RELEASED = 17,
};

/* One file in a watched directory changed. `dir_id` names the directory (watched_dirs value);
 * 0 means "not in a watched directory" (the other side of a rename). */
struct lf_file_event {
	struct lf_event_header hdr;
	__u32 dir_id;      /* new side for renames */
	__u32 old_dir_id;  /* LF_EV_FILE_RENAMED: old side; else 0 */
	__u32 open_flags;  /* CREATED/TRUNCATED/CLOSED: flags of the open (O_EXCL tells statd's create) */
	__u32 rename_flags; /* LF_EV_FILE_RENAMED: RENAME_NOREPLACE/EXCHANGE/... */
	__s64 ret;         /* the syscall's return value (fd for opens) */
	char name[LF_NAME_LEN];     /* file name inside dir_id (for renames: the new name) */
	char old_name[LF_NAME_LEN]; /* LF_EV_FILE_RENAMED: the old name */
};

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

/* Per-CPU counters (array map "counters"), summed over CPUs by userspace. */
enum lf_counter {
	LF_CNT_HITS = 0,       /* syscalls that passed the cheap filters (flags, success) */
	LF_CNT_MATCHED = 1,    /* ... whose directory is watched */
	LF_CNT_EMITS = 2,      /* events put on the ring buffer */
	LF_CNT_DROPS = 3,      /* ring buffer full: an event was lost, userspace must rescan */
	LF_CNT_UNRESOLVED = 4, /* a path could not be read or was too long to resolve */
	LF_CNT_FD_UNTRACKED = 5, /* a close was seen for a tracked fd that now holds another file */
	LF_CNT_MAX = 8,
};

#endif /* LOCKFERRY_EVENTS_H */
