/* SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only) */
/* Kernel-only types of lock_watch.bpf.c: older layouts of struct file_lock and kernel lockd's
 * owner/host structs, as CO-RE flavors, plus the kernel constants vmlinux.h lacks that
 * never cross to userspace (values that do are in lockferry/events.h). */
#ifndef LOCKFERRY_LOCK_WATCH_BPF_H
#define LOCKFERRY_LOCK_WATCH_BPF_H

#include "lockferry/events.h"

/* include/linux/sched.h */
#define LF_PF_KTHREAD 0x00200000

/* Before Linux 6.9 ("filelock: split common fields into struct file_lock_core", commit
 * a69ce85ec9af) the owner, flags, type, pid and file lived directly in struct file_lock. */
struct file_lock___pre69 {
	fl_owner_t fl_owner;
	unsigned int fl_flags;
	unsigned char fl_type;
	unsigned int fl_pid;
	struct file *fl_file;
	loff_t fl_start;
	loff_t fl_end;
	const struct lock_manager_operations *fl_lmops;
} __attribute__((preserve_access_index));

/* Kernel lockd (fs/lockd, usually a module: its types are in /sys/kernel/btf/lockd, not in
 * vmlinux.h). A lockd lock's fl_owner is the nlm_lockowner of the NLM client's host
 * (nlmsvc_locks_init_private). Only the fields read are declared; bpf_core_type_exists()
 * is false where lockd has no BTF, and that code is then dead. */
struct nlm_host___lf {
	struct __kernel_sockaddr_storage h_addr;    /* the client */
	struct __kernel_sockaddr_storage h_srcaddr; /* our address the client sent to */
	char *h_name;
} __attribute__((preserve_access_index));

struct nlm_lockowner___lf {
	struct nlm_host___lf *host;
} __attribute__((preserve_access_index));

/* The network namespace of kernel lockd's NLM host (nlm_host.net, Linux 3.9+): which of several
 * NFS servers on one kernel (one per network namespace) a lockd lock belongs to. */
struct nlm_host___lfnet {
	struct net *net;
} __attribute__((preserve_access_index));

struct nlm_lockowner___lfnet {
	struct nlm_host___lfnet *host;
} __attribute__((preserve_access_index));

/* Kernel lockd's own lock arguments (include/linux/lockd/lockd.h, xdr.h), for the kprobe hook
 * set: struct nlm_lock embeds the struct file_lock lockd asks the VFS for; an NLM call (struct
 * nlm_rqst, e.g. the GRANTED_MSG callback of a blocked lock) carries one in its arguments. */
struct nlm_lock___lf {
	struct file_lock fl;
} __attribute__((preserve_access_index));

struct nlm_args___lf {
	struct nlm_lock___lf lock;
} __attribute__((preserve_access_index));

struct nlm_rqst___lf {
	struct nlm_args___lf a_args;
} __attribute__((preserve_access_index));

/* include/linux/lockd/nlm.h: the procedure nlmsvc_grant_blocked calls back a client with. */
#define LF_NLMPROC_GRANTED_MSG 10
/* lockd threads inside nlmsvc_lock/nlmsvc_unlock at once (lockd runs one thread). */
#define LF_LOCKD_CALLS_MAX 64

/* include/uapi/asm-generic/fcntl.h (x86_64 and arm64 alike): the locking commands of fcntl(2). */
#define LF_F_SETLK 6
#define LF_F_SETLKW 7
#define LF_F_OFD_SETLK 37
#define LF_F_OFD_SETLKW 38
#define LF_SEEK_SET 0
#define LF_SEEK_CUR 1
#define LF_SEEK_END 2
/* Manager threads inside fcntl at once (NFS-Ganesha runs a few hundred worker threads). */
#define LF_FCNTL_CALLS_MAX 4096

/* struct flock (include/uapi/asm-generic/fcntl.h, 64-bit off_t) as the manager passes it. */
struct lf_flock {
	__s16 l_type;
	__s16 l_whence;
	__s64 l_start;
	__s64 l_len;
	__s32 l_pid;
};

/* State of one dentry walk (bpf_loop context): scalars only, the path goes to scratch. */
struct lf_path_walk {
	__u64 dentry; /* struct dentry * */
	__u64 mnt;    /* struct mount * */
	__u32 off;    /* bytes used in the path buffer */
	__u32 depth;  /* names written */
	__u32 max_depth;
	__u32 flags; /* LF_PATH_* */
};

#endif /* LOCKFERRY_LOCK_WATCH_BPF_H */
