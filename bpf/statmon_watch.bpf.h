/* SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only) */
/* Kernel-only types of statmon_watch.bpf.c: per-thread syscall state, tracked fds, scratch
 * space, and the UAPI constants vmlinux.h does not carry (they are #defines in the kernel). */
#ifndef LOCKFERRY_STATMON_WATCH_BPF_H
#define LOCKFERRY_STATMON_WATCH_BPF_H

#include "lockferry/events.h"

/* include/uapi/linux/fcntl.h (the open flags, which cross to userspace, are in lockferry/events.h)
 */
#define LF_AT_FDCWD -100
#define LF_AT_REMOVEDIR 0x200

/* include/linux/fs.h: a file opened for writing; the one fmode bit that has never moved. */
#define LF_FMODE_WRITE 0x2

/* Bytes of the watched-directory inode filter of the function-level hooks (power of two). */
#define LF_INO_FILTER 4096

/* Slots of the counting filters in front of the pending and tracked_fds hashes (power of two;
 * 2 x 64 KiB of .bss). */
#define LF_FILTER_SLOTS 16384

enum lf_op {
	LF_OP_OPEN = 1,
	LF_OP_CLOSE = 2,
	LF_OP_UNLINK = 3,
	LF_OP_RENAME = 4,
};

/* What sys_enter saw, for sys_exit of the same thread. */
struct lf_pending {
	__u32 op;    /* enum lf_op */
	__u32 flags; /* open flags, or renameat2 flags */
	__s32 dfd;   /* dir fd of `path`; for LF_OP_CLOSE the fd being closed */
	__s32 dfd2;  /* dir fd of `path2` (rename target) */
	__u64 path;  /* user pointer */
	__u64 path2; /* user pointer (rename target) */
	__u64 file;  /* LF_OP_CLOSE: the struct file the fd held */
};

struct lf_fd_key {
	__u32 tgid;
	__u32 fd;
};

/* A file opened for writing in a watched directory, waiting for its close(). */
struct lf_fd_value {
	__u64 file; /* struct file address: tells a reused fd number from the tracked file */
	__u32 dir_id;
	__u32 open_flags;
	char name[LF_NAME_LEN];
};

/* kprobe hook set: vfs_unlink/vfs_link arguments saved at entry for the return probe. */
struct lf_entry_args {
	__u64 dir;    /* struct inode * of the directory */
	__u64 dentry; /* struct dentry * of the entry removed or linked in */
};

struct lf_scratch {
	char path[LF_PATH_LEN];
	__s32 last_slash;
	__u32 pad;
	struct lf_path_key key;
	struct lf_fd_value fd;
	struct lf_file_event ev; /* function-level hooks: a rename seen at entry, for its exit */
};

#endif /* LOCKFERRY_STATMON_WATCH_BPF_H */
