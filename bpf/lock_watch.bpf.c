// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
// Records which lock manager process (kernel lockd, ganesha.nfsd) was granted or released which
// POSIX/OFD byte-range lock on which file, from the filelock tracepoints, filtered by tgid first.
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "lock_watch.bpf.h"
#include "lockferry/events.h"

// bpf_probe_read_kernel_str and friends are GPL-only helpers.
char LICENSE[] SEC("license") = "GPL";

// Set by userspace before load. How many path components to walk (1..LF_LOCK_PATH_DEPTH).
const volatile __u32 targ_path_depth = LF_LOCK_PATH_DEPTH;
// Read kernel lockd's NLM client host name when its types are known (see lock_watch.bpf.h).
const volatile bool targ_nlm_host = true;
// Wake the reader only once this many bytes wait in the ring (userspace drains it on a short
// timer anyway). A wake-up per event is an irq_work self-IPI in the locking thread: measured
// ~18 us per lock on this project's virtual machines, 15x the rest of the program.
const volatile __u64 targ_wake_bytes = 0;

// The lock manager processes, by tgid. The one lookup every lock operation on the machine pays
// before anything else; userspace keeps it current from /proc, the exec/rename programs below
// add a process as soon as it takes a manager's name.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct lf_manager_value);
} lock_managers SEC(".maps");

// Pre-filter in front of lock_managers: bit (tgid % 64) of word tgid / 64 is set for every tgid
// that is or was a manager (set before the hash entry is added, never cleared, so it is a
// superset of the hash's keys). A lock by anyone else costs one load and a bit test instead of a
// hash lookup (~50 ns with this kernel's retpolines); a stale bit of a dead manager whose pid is
// reused only costs that process the hash lookup. Userspace sets bits in the mmapped .bss.
__u64 manager_bits[LF_MANAGER_BITMAP_WORDS];

// Configured manager names (comm, zero-padded), for the exec/rename programs.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, char[LF_COMM_LEN]);
	__type(value, __u32);
} manager_names SEC(".maps");

// enum lf_lock_counter, per CPU so counting needs no atomics.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LF_LCNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lock_counters SEC(".maps");

// struct lf_lock_event records (~1.2 KiB each): 4 MiB hold ~3400, a burst of grants while the
// daemon is busy writing the store. A drop is counted; userspace then reports the table as
// possibly incomplete.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} lock_events SEC(".maps");

// Per-CPU event under construction: too big for the 512-byte BPF stack.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lf_lock_event);
} lock_scratch SEC(".maps");

// NFS-Ganesha's NLM clients: the caller_name of the NLM request each Ganesha thread is serving
// now, set by the uprobes on its NLM handlers (below) and read by handle_lock, which runs in the
// same thread (the handler takes the lock through the VFS FSAL synchronously).
struct lf_nlm_caller {
	char name[LF_HOST_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LF_NLM_CALLERS_MAX);
	__type(key, __u64);
	__type(value, struct lf_nlm_caller);
} nlm_callers SEC(".maps");

static __always_inline void lcount(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&lock_counters, &idx);

	if (v)
		*v += 1;
}

/* ---- path of the locked file: a bounded walk up the dentry chain, across mounts ---- */

static long walk_step(__u32 i, void *ctx)
{
	struct lf_path_walk *w = ctx;
	struct dentry *d = (struct dentry *)w->dentry;
	struct mount *m = (struct mount *)w->mnt;
	struct dentry *parent;
	struct lf_lock_event *e;
	__u32 zero = 0, off;
	long n;

	if (!d || !m)
		return 1;
	if (d == BPF_CORE_READ(m, mnt.mnt_root)) {
		struct mount *up = BPF_CORE_READ(m, mnt_parent);

		// The root of the mount tree (of the manager's mount namespace): done.
		if (up == m || !up) {
			w->flags |= LF_PATH_COMPLETE;
			return 1;
		}
		// Continue at the mountpoint in the parent mount; this names nothing itself.
		w->dentry = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		w->mnt = (__u64)up;
		return 0;
	}
	parent = BPF_CORE_READ(d, d_parent);
	if (parent == d) {
		// A filesystem root that is no mount's root: an anonymous dentry of a file opened
		// by handle (open_by_handle_at, as Ganesha does) whose parents are not in the
		// dcache.
		w->flags |= LF_PATH_DISCONNECTED;
		return 1;
	}
	if (w->depth >= w->max_depth) {
		w->flags |= LF_PATH_TRUNCATED;
		return 1;
	}
	e = bpf_map_lookup_elem(&lock_scratch, &zero);
	if (!e)
		return 1;
	off = w->off;
	if (off > LF_LOCK_PATH_LEN - LF_NAME_LEN) {
		w->flags |= LF_PATH_TRUNCATED;
		return 1;
	}
	n = bpf_probe_read_kernel_str(&e->path[off], LF_NAME_LEN, BPF_CORE_READ(d, d_name.name));
	if (n <= 0)
		return 1;
	w->off = off + n;
	w->depth++;
	w->dentry = (__u64)parent;
	return 0;
}

static __always_inline void read_path(struct lf_lock_event *e, struct file *file)
{
	struct lf_path_walk w = {};
	struct vfsmount *vfsmnt;

	if (!file)
		return;
	vfsmnt = BPF_CORE_READ(file, f_path.mnt);
	w.dentry = (__u64)BPF_CORE_READ(file, f_path.dentry);
	// struct mount embeds the vfsmount (fs/mount.h): container_of by the CO-RE offset.
	w.mnt = (__u64)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	w.max_depth = targ_path_depth < LF_LOCK_PATH_DEPTH ? targ_path_depth : LF_LOCK_PATH_DEPTH;
	// Mount crossings use an iteration each; a few more than the depth covers them.
	bpf_loop(LF_LOCK_PATH_DEPTH + 8, walk_step, &w, 0);
	e->path_len = w.off;
	e->path_depth = w.depth;
	e->path_flags = w.flags;
	if (w.flags & (LF_PATH_TRUNCATED | LF_PATH_DISCONNECTED))
		lcount(LF_LCNT_PATH_TRUNCATED);
}

/* ---- the lock itself ---- */

// Which client, through which of our addresses (per-service-IP attribution): nlm_host keeps both
// (one nlm_host per client and server address, fs/lockd/host.c nlmsvc_lookup_host).
static __always_inline void read_nlm_addrs(struct lf_lock_event *e, struct nlm_host___lf *host)
{
	if (!host || !bpf_core_field_exists(struct nlm_host___lf, h_srcaddr) ||
	    !bpf_core_field_exists(struct nlm_host___lf, h_addr))
		return;
	bpf_core_read(e->nlm_client_addr, sizeof(e->nlm_client_addr), &host->h_addr);
	bpf_core_read(e->nlm_server_addr, sizeof(e->nlm_server_addr), &host->h_srcaddr);
}

// Kernel lockd (a kernel thread) owns its locks through an nlm_lockowner whose host names the
// NLM client. Guarded so the program loads on kernels without lockd or without its BTF.
static __always_inline void read_nlm_host(struct lf_lock_event *e, __u64 owner, __u64 lmops)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct nlm_lockowner___lf *lo = (struct nlm_lockowner___lf *)owner;
	const char *name;

	if (!targ_nlm_host || !lmops || !owner)
		return;
	if (!(BPF_CORE_READ(task, flags) & LF_PF_KTHREAD))
		return;
	if (!bpf_core_type_exists(struct nlm_lockowner___lf) ||
	    !bpf_core_field_exists(struct nlm_host___lf, h_name))
		return;
	name = BPF_CORE_READ(lo, host, h_name);
	if (name && bpf_probe_read_kernel_str(e->nlm_host, sizeof(e->nlm_host), name) > 0)
		e->client_source = LF_CLIENT_SRC_NLM_HOST;
	read_nlm_addrs(e, BPF_CORE_READ(lo, host));
}

// Which network namespace (which NFS server, when several share the kernel) a lock belongs to:
// kernel lockd's NLM host's (the one lockd thread serves every namespace), else the locking
// process's; 0 when a kernel thread's lock says nothing more.
static __always_inline void read_netns(struct lf_lock_event *e, __u64 owner, __u64 lmops)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct nlm_lockowner___lfnet *lo = (struct nlm_lockowner___lfnet *)owner;

	e->netns = 0;
	e->netns_pad = 0;
	if (!(BPF_CORE_READ(task, flags) & LF_PF_KTHREAD)) {
		e->netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
		return;
	}
	if (lmops && owner && bpf_core_type_exists(struct nlm_lockowner___lfnet) &&
	    bpf_core_field_exists(struct nlm_host___lfnet, net))
		e->netns = BPF_CORE_READ(lo, host, net, ns.inum);
}

// Ganesha's locks are OFD locks of the server process: the client is the caller_name of the NLM
// request the current thread is serving, if the uprobes below saw one.
static __always_inline void read_nlm_caller(struct lf_lock_event *e, __u64 id)
{
	struct lf_nlm_caller *c = bpf_map_lookup_elem(&nlm_callers, &id);

	if (!c)
		return;
	__builtin_memcpy(e->nlm_host, c->name, sizeof(e->nlm_host));
	e->client_source = LF_CLIENT_SRC_GANESHA;
}

static __always_inline void mark_manager(__u32 tgid)
{
	__sync_fetch_and_or(&manager_bits[(tgid / 64) & (LF_MANAGER_BITMAP_WORDS - 1)],
			    1ULL << (tgid % 64));
}

// Is the current process a lock manager? Every lock operation on the machine asks, before it
// reads anything else; the answer for nearly all of them is no, from the bitmap alone.
static __always_inline bool current_is_manager(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!(manager_bits[(tgid / 64) & (LF_MANAGER_BITMAP_WORDS - 1)] & (1ULL << (tgid % 64))))
		return false;
	return bpf_map_lookup_elem(&lock_managers, &tgid) != NULL;
}

// The file a lock is taken through (struct file_lock_core since Linux 6.9).
static __always_inline struct file *lock_file(struct file_lock *fl)
{
	if (bpf_core_field_exists(struct file_lock, c))
		return BPF_CORE_READ(fl, c.flc_file);
	return BPF_CORE_READ((struct file_lock___pre69 *)fl, fl_file);
}

// The per-CPU scratch event with everything but the lock's range and owner filled in for the
// current thread, a lock manager (current_is_manager()): NULL only if the scratch is missing.
static __always_inline struct lf_lock_event *begin_event(__u8 type, __u32 flags, __u64 dev,
							 __u64 ino, int ret, __u8 source)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	struct lf_lock_event *e;
	__u32 zero = 0;

	e = bpf_map_lookup_elem(&lock_scratch, &zero);
	if (!e)
		return NULL;
	e->hdr.version = LF_EVENTS_VERSION;
	e->hdr.kind = type == LF_F_UNLCK ? LF_EV_LOCK_RELEASED : LF_EV_LOCK_GRANTED;
	e->hdr.size = sizeof(*e);
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->hdr.pid = id >> 32;
	e->hdr.tid = (__u32)id;
	bpf_get_current_comm(e->hdr.comm, sizeof(e->hdr.comm));
	// Ganesha names its threads; the leader keeps the process name.
	BPF_CORE_READ_STR_INTO(&e->manager_comm, task, group_leader, comm);
	e->dev = dev;
	e->ino = ino;
	e->ret = ret;
	e->fl_flags = flags;
	e->type = type;
	e->source = source;
	e->pad = 0;
	e->nlm_host[0] = 0;
	__builtin_memset(e->nlm_client_addr, 0, sizeof(e->nlm_client_addr));
	__builtin_memset(e->nlm_server_addr, 0, sizeof(e->nlm_server_addr));
	e->client_source = LF_CLIENT_SRC_NONE;
	e->client_pad = 0;
	e->path_len = 0;
	e->path_depth = 0;
	e->path_flags = 0;
	e->path[0] = 0;
	return e;
}

// The rest of an event whose range and owner are set: the path of a grant's file (releases need
// none: userspace knows the file from the grant) and the client.
static __always_inline void end_event(struct lf_lock_event *e, struct file *file, __u64 lmops)
{
	if (e->hdr.kind == LF_EV_LOCK_GRANTED)
		read_path(e, file);
	read_nlm_host(e, e->owner, lmops);
	read_netns(e, e->owner, lmops);
	if (e->client_source == LF_CLIENT_SRC_NONE)
		read_nlm_caller(e, bpf_get_current_pid_tgid());
}

// The lock event of `fl` in the per-CPU scratch, or NULL when nothing changed. `release_all`:
// a release of every range of fl's owner on its file (nlm_unlock_files), whatever fl holds.
// Only called for lock managers (current_is_manager()).
static __always_inline struct lf_lock_event *lock_event(struct file_lock *fl, __u64 dev, __u64 ino,
							int ret, __u8 source, bool release_all)
{
	struct lf_lock_event *e;
	__u64 owner, lmops;
	__s32 fl_pid;
	__u32 flags;
	__u8 type;

	lcount(LF_LCNT_HITS);
	if (!fl)
		return NULL;

	if (bpf_core_field_exists(struct file_lock, c)) {
		flags = BPF_CORE_READ(fl, c.flc_flags);
		type = BPF_CORE_READ(fl, c.flc_type);
	} else {
		struct file_lock___pre69 *old = (void *)fl;

		flags = BPF_CORE_READ(old, fl_flags);
		type = BPF_CORE_READ(old, fl_type);
	}
	if (release_all) {
		flags = LF_FL_POSIX;
		type = LF_F_UNLCK;
	}
	// Only a change the kernel made counts: conflicts (-EAGAIN), waits (FILE_LOCK_DEFERRED),
	// -ENOLCK and FL_ACCESS probes leave the lock state as it was.
	if (ret != 0 || (flags & LF_FL_ACCESS)) {
		lcount(LF_LCNT_FAILED);
		return NULL;
	}

	e = begin_event(type, flags, dev, ino, ret, source);
	if (!e)
		return NULL;
	if (bpf_core_field_exists(struct file_lock, c)) {
		owner = (__u64)BPF_CORE_READ(fl, c.flc_owner);
		fl_pid = BPF_CORE_READ(fl, c.flc_pid);
		lmops = (__u64)BPF_CORE_READ(fl, fl_lmops);
	} else {
		struct file_lock___pre69 *old = (void *)fl;

		owner = (__u64)BPF_CORE_READ(old, fl_owner);
		fl_pid = BPF_CORE_READ(old, fl_pid);
		lmops = (__u64)BPF_CORE_READ(old, fl_lmops);
	}
	e->fl_pid = fl_pid;
	e->start = release_all ? 0 : BPF_CORE_READ(fl, fl_start);
	e->end = release_all ? LF_OFFSET_MAX : BPF_CORE_READ(fl, fl_end);
	e->owner = owner;
	end_event(e, lock_file(fl), lmops);
	return e;
}

static __always_inline int emit_lock_event(struct lf_lock_event *e)
{
	__u64 wake = bpf_ringbuf_query(&lock_events, BPF_RB_AVAIL_DATA) >= targ_wake_bytes
			     ? BPF_RB_FORCE_WAKEUP
			     : BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_output(&lock_events, e, sizeof(*e), wake) != 0) {
		lcount(LF_LCNT_DROPS);
		return 0;
	}
	lcount(e->hdr.kind == LF_EV_LOCK_GRANTED ? LF_LCNT_GRANTS : LF_LCNT_RELEASES);
	return 0;
}

// Only called for lock managers (current_is_manager()).
static __always_inline int handle_lock(struct file_lock *fl, __u64 dev, __u64 ino, int ret,
				       __u8 source)
{
	struct lf_lock_event *e = lock_event(fl, dev, ino, ret, source, false);

	return e ? emit_lock_event(e) : 0;
}

// BTF-typed tracepoints (Linux 5.5+ with BTF): arguments as typed pointers, no tracefs needed.
// The inode's fields are read directly (BTF pointer loads), not with probe-read helper calls,
// and only once the process is known to be a manager.
SEC("tp_btf/posix_lock_inode")
int BPF_PROG(tp_btf__posix_lock_inode, struct inode *inode, struct file_lock *fl, int ret)
{
	// tp_btf arguments may be NULL as far as the verifier knows.
	if (!current_is_manager() || !inode)
		return 0;
	return handle_lock(fl, inode->i_sb->s_dev, inode->i_ino, ret, LF_LOCK_SRC_POSIX_LOCK_INODE);
}

SEC("tp_btf/locks_remove_posix")
int BPF_PROG(tp_btf__locks_remove_posix, struct inode *inode, struct file_lock *fl, int ret)
{
	if (!current_is_manager() || !inode)
		return 0;
	return handle_lock(fl, inode->i_sb->s_dev, inode->i_ino, ret,
			   LF_LOCK_SRC_LOCKS_REMOVE_POSIX);
}

// Classic tracepoints: the same events through tracefs, for kernels where tp_btf is refused.
// The record's `fl` is the same struct file_lock pointer, read with probe reads.
SEC("tracepoint/filelock/posix_lock_inode")
int tracepoint__filelock__posix_lock_inode(struct trace_event_raw_filelock_lock *ctx)
{
	if (!current_is_manager())
		return 0;
	return handle_lock(ctx->fl, ctx->s_dev, ctx->i_ino, ctx->ret, LF_LOCK_SRC_POSIX_LOCK_INODE);
}

SEC("tracepoint/filelock/locks_remove_posix")
int tracepoint__filelock__locks_remove_posix(struct trace_event_raw_filelock_lock *ctx)
{
	if (!current_is_manager())
		return 0;
	return handle_lock(ctx->fl, ctx->s_dev, ctx->i_ino, ctx->ret,
			   LF_LOCK_SRC_LOCKS_REMOVE_POSIX);
}

/* ---- kernel lockd alone: kprobes on its own functions (hook set "kprobe") ---- */

// Where the only lock manager is kernel lockd, these replace the posix_lock_inode hooks: only
// lockd's NLM calls run them, so other processes' fcntl runs no program at all. In Linux 6.1,
// lockd changes a lock through vfs_lock_file in exactly four functions (fs/lockd/svclock.c,
// svcsubs.c): nlmsvc_lock (LOCK, reclaims included), nlmsvc_unlock (UNLOCK), nlmsvc_grant_blocked
// (a blocked lock granted later; inlined into nlmsvc_retry_blocked, so its GRANTED_MSG call to
// nlm_async_call marks it) and nlm_unlock_files (every lock of one owner on one file: client
// reboot, FREE_ALL, unexport, lockd shutdown). What lockd drops in the context of another
// process (a write to /proc/fs/nfsd/unlock_ip or unlock_filesystem, an nfsd shutdown) passes no
// manager filter, exactly as with posix_lock_inode: the periodic reconcile from /proc/locks
// repairs the table (capture/kernel_locks.h). Arguments are read by position: userspace checks
// lockd's BTF for the expected parameters before it loads these (capture/lockd_functions.h).

// LOCK and UNLOCK between entry and return, by thread: the lock and its file's identity, read at
// entry (nlmsvc_unlock points fl_file at another open file of the same inode, or NULL).
struct lf_lockd_call {
	__u64 fl; /* struct file_lock * inside lockd's struct nlm_lock */
	__u64 dev;
	__u64 ino;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LF_LOCKD_CALLS_MAX);
	__type(key, __u64);
	__type(value, struct lf_lockd_call);
} lockd_calls SEC(".maps");

static __always_inline void file_identity(struct file *file, __u64 *dev, __u64 *ino)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);

	*dev = BPF_CORE_READ(inode, i_sb, s_dev);
	*ino = BPF_CORE_READ(inode, i_ino);
}

static __always_inline int lockd_enter(struct nlm_lock___lf *lock)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct lf_lockd_call call = {};

	if (!current_is_manager() || !lock)
		return 0;
	call.fl = (__u64)&lock->fl;
	file_identity(lock_file((struct file_lock *)call.fl), &call.dev, &call.ino);
	bpf_map_update_elem(&lockd_calls, &id, &call, BPF_ANY);
	return 0;
}

// `status` is lockd's __be32 NLM status (the low half of the return register): nlm_granted is 0
// in any byte order.
static __always_inline int lockd_exit(__u32 status, __u8 source)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct lf_lockd_call *found = bpf_map_lookup_elem(&lockd_calls, &id);
	struct lf_lockd_call call;

	if (!found)
		return 0;
	call = *found;
	bpf_map_delete_elem(&lockd_calls, &id);
	return handle_lock((struct file_lock *)call.fl, call.dev, call.ino, status == 0 ? 0 : -1,
			   source);
}

SEC("kprobe/nlmsvc_lock")
int BPF_KPROBE(kprobe__enter_nlmsvc_lock, void *rqstp, void *file, void *host,
	       struct nlm_lock___lf *lock)
{
	return lockd_enter(lock);
}

SEC("kretprobe/nlmsvc_lock")
int BPF_KRETPROBE(kretprobe__exit_nlmsvc_lock, long status)
{
	return lockd_exit(status, LF_LOCK_SRC_LOCKD_LOCK);
}

SEC("kprobe/nlmsvc_unlock")
int BPF_KPROBE(kprobe__enter_nlmsvc_unlock, void *net, void *file, struct nlm_lock___lf *lock)
{
	return lockd_enter(lock);
}

// nlmsvc_unlock has set the lock's type to F_UNLCK by now: a release.
SEC("kretprobe/nlmsvc_unlock")
int BPF_KRETPROBE(kretprobe__exit_nlmsvc_unlock, long status)
{
	return lockd_exit(status, LF_LOCK_SRC_LOCKD_UNLOCK);
}

// nlmsvc_grant_blocked took the blocked lock (vfs_lock_file returned 0) and now tells the client
// with GRANTED_MSG; the block's own copy of the lock is what the kernel holds. A retransmission
// (no GRANTED_RES within 60 s) repeats the grant, which changes nothing in the table.
SEC("kprobe/nlm_async_call")
int BPF_KPROBE(kprobe__enter_nlm_async_call, struct nlm_rqst___lf *req, __u32 proc)
{
	struct file_lock *fl;
	__u64 dev, ino;

	if (proc != LF_NLMPROC_GRANTED_MSG || !req || !current_is_manager())
		return 0;
	fl = (struct file_lock *)&req->a_args.lock.fl;
	file_identity(lock_file(fl), &dev, &ino);
	return handle_lock(fl, dev, ino, 0, LF_LOCK_SRC_LOCKD_GRANTED);
}

// nlm_unlock_files(file, fl) unlocks 0-OFFSET_MAX for fl's owner on the file: a release of every
// range that owner holds there (it runs once per lock lockd finds, so repeats are harmless).
SEC("kprobe/nlm_unlock_files")
int BPF_KPROBE(kprobe__enter_nlm_unlock_files, void *file, struct file_lock *fl)
{
	struct lf_lock_event *e;
	__u64 dev, ino;

	if (!fl || !current_is_manager())
		return 0;
	file_identity(lock_file(fl), &dev, &ino);
	e = lock_event(fl, dev, ino, 0, LF_LOCK_SRC_LOCKD_UNLOCK_FILES, true);
	return e ? emit_lock_event(e) : 0;
}

/* ---- userspace lock managers alone: uprobes on their C library's fcntl and close ---- */

// Hook set "uprobe": where no configured manager is kernel lockd (or lockd's own kprobes above
// cover it), these replace the posix_lock_inode hooks. Userspace attaches them per manager
// process (capture/manager_uprobes.h): the kernel puts the breakpoint only into that process's
// memory, so no other process runs anything, not even a trap. NFS-Ganesha's VFS backend takes
// every NLM lock with fcntl(F_OFD_SETLK) on its own open file; a lock the kernel drops without
// the manager asking (the process exits, or a close() of another descriptor of the same open
// file) is repaired by the reconcile from the manager's fdinfo (capture/kernel_locks.h), as is a
// lock taken through a raw syscall.

// A lock request between fcntl's entry and return, by thread.
struct lf_fcntl_call {
	__u64 flock; /* struct flock * in the manager's memory */
	__s32 fd;
	__s32 cmd;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LF_FCNTL_CALLS_MAX);
	__type(key, __u64);
	__type(value, struct lf_fcntl_call);
} fcntl_calls SEC(".maps");

// The open file behind descriptor `fd` of the current process, or NULL.
static __always_inline struct file *current_fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;

	if (fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

SEC("uprobe")
int BPF_KPROBE(uprobe__enter_manager_fcntl, int fd, int cmd, void *arg)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct lf_fcntl_call call = {.flock = (__u64)arg, .fd = fd, .cmd = cmd};

	// Locking commands only: the others (F_GETFL, F_SETFD, ...) pay one compare.
	if (cmd != LF_F_SETLK && cmd != LF_F_SETLKW && cmd != LF_F_OFD_SETLK &&
	    cmd != LF_F_OFD_SETLKW)
		return 0;
	if (!current_is_manager())
		return 0;
	bpf_map_update_elem(&fcntl_calls, &id, &call, BPF_ANY);
	return 0;
}

// The lock as the kernel made it of the request (fs/locks.c flock_to_posix_lock): [start, end],
// or false when the request cannot have succeeded as read.
static __always_inline bool request_range(const struct lf_flock *fl, struct file *file,
					  __s64 *start, __s64 *end)
{
	__s64 base = 0;

	if (fl->l_whence == LF_SEEK_CUR)
		base = BPF_CORE_READ(file, f_pos);
	else if (fl->l_whence == LF_SEEK_END)
		base = BPF_CORE_READ(file, f_inode, i_size);
	else if (fl->l_whence != LF_SEEK_SET)
		return false;
	*start = base + fl->l_start;
	if (fl->l_len > 0) {
		*end = *start + fl->l_len - 1;
	} else if (fl->l_len < 0) {
		*end = *start - 1;
		*start += fl->l_len;
	} else {
		*end = LF_OFFSET_MAX;
	}
	return *start >= 0 && *end >= *start;
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe__exit_manager_fcntl, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct lf_fcntl_call *found = bpf_map_lookup_elem(&fcntl_calls, &id);
	struct lf_fcntl_call call;
	struct lf_lock_event *e;
	struct lf_flock fl;
	struct file *file;
	__s64 start, end;
	bool ofd;

	if (!found)
		return 0;
	call = *found;
	bpf_map_delete_elem(&fcntl_calls, &id);
	lcount(LF_LCNT_HITS);
	if (ret != 0) {
		lcount(LF_LCNT_FAILED);
		return 0;
	}
	file = current_fd_file(call.fd);
	// Read after the call: what the kernel acted on. A request that cannot be read back
	// (the manager changed it meanwhile) is a lost event: the reconcile repairs the table.
	if (!file || bpf_probe_read_user(&fl, sizeof(fl), (const void *)call.flock) != 0 ||
	    !request_range(&fl, file, &start, &end) || fl.l_type > LF_F_UNLCK) {
		lcount(LF_LCNT_DROPS);
		return 0;
	}
	ofd = call.cmd == LF_F_OFD_SETLK || call.cmd == LF_F_OFD_SETLKW;
	e = begin_event(fl.l_type, LF_FL_POSIX | (ofd ? LF_FL_OFDLCK : 0),
			BPF_CORE_READ(file, f_inode, i_sb, s_dev),
			BPF_CORE_READ(file, f_inode, i_ino), 0, LF_LOCK_SRC_MANAGER_FCNTL);
	if (!e)
		return 0;
	// The kernel's owners: the open file for OFD locks, the process's file table for the
	// others.
	e->owner = ofd ? (__u64)file
		       : (__u64)BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), files);
	e->fl_pid = id >> 32;
	e->start = start;
	e->end = end;
	end_event(e, file, 0);
	return emit_lock_event(e);
}

// A release of every range `owner` holds on `file`'s inode, because the manager closed it.
static __always_inline void released_on_close(struct file *file, __u64 owner, __u32 flags)
{
	struct lf_lock_event *e;

	e = begin_event(LF_F_UNLCK, flags | LF_FL_CLOSE, BPF_CORE_READ(file, f_inode, i_sb, s_dev),
			BPF_CORE_READ(file, f_inode, i_ino), 0, LF_LOCK_SRC_MANAGER_CLOSE);
	if (!e)
		return;
	e->owner = owner;
	e->fl_pid = bpf_get_current_pid_tgid() >> 32;
	e->start = 0;
	e->end = LF_OFFSET_MAX;
	end_event(e, file, 0);
	emit_lock_event(e);
}

// close() drops the process's POSIX locks on the file's inode, and the open file's OFD locks when
// it was the last descriptor. Only files of inodes that ever had a lock (i_flctx) cost an event.
SEC("uprobe")
int BPF_KPROBE(uprobe__enter_manager_close, int fd)
{
	struct file *file;

	if (!current_is_manager())
		return 0;
	file = current_fd_file(fd);
	if (!file || !BPF_CORE_READ(file, f_inode, i_flctx))
		return 0;
	lcount(LF_LCNT_HITS);
	released_on_close(file,
			  (__u64)BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), files),
			  LF_FL_POSIX);
	// Another descriptor of the same open file keeps its OFD locks; the kernel's count of
	// references is not read here (its type changed in 6.13): the reconcile restores them.
	released_on_close(file, (__u64)file, LF_FL_POSIX | LF_FL_OFDLCK);
	return 0;
}

/* ---- NFS-Ganesha's NLM clients: uprobes on its NLM handlers ---- */

// Attached by userspace (capture/ganesha_nlm.h finds the handlers in libganesha_nfsd.so), hence
// the bare sections. Entry: remember the request's caller_name for this thread; return: forget
// it, so a lock the thread takes later for another reason (a blocked lock granted by a retry, an
// NFSv4 lock) is never named after a stale request.
static __always_inline int remember_caller(__u64 args, __u32 caller_off)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct lf_nlm_caller c = {};
	const char *name = NULL;

	if (!current_is_manager() || !args)
		return 0;
	if (bpf_probe_read_user(&name, sizeof(name), (const void *)(args + caller_off)) != 0 ||
	    !name)
		return 0;
	if (bpf_probe_read_user_str(c.name, sizeof(c.name), name) <= 0)
		return 0;
	bpf_map_update_elem(&nlm_callers, &id, &c, BPF_ANY);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(uprobe__ganesha_nlm_lock, void *args)
{
	return remember_caller((__u64)args, LF_GANESHA_LOCKARGS_CALLER);
}

SEC("uprobe")
int BPF_KPROBE(uprobe__ganesha_nlm_unlock, void *args)
{
	return remember_caller((__u64)args, LF_GANESHA_UNLOCKARGS_CALLER);
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe__ganesha_nlm_return)
{
	__u64 id = bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&nlm_callers, &id);
	return 0;
}

/* ---- keeping lock_managers current between userspace's /proc scans ---- */

// Any process can take a manager's name (prctl, exec of a file so named); only kernel threads
// (kernel lockd) and root's processes may be managers. Userspace then checks the executable of
// what passes (manager_identity.h) before it records any of its locks. uid and euid as /proc
// shows them (the objective credentials), in the initial user namespace: root in a user
// namespace of its own is still its owner's uid here.
static __always_inline bool may_be_manager(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const struct cred *cred;

	if (BPF_CORE_READ(task, flags) & LF_PF_KTHREAD)
		return true;
	cred = BPF_CORE_READ(task, real_cred);
	return BPF_CORE_READ(cred, uid.val) == 0 && BPF_CORE_READ(cred, euid.val) == 0;
}

// Tells userspace (at its next drain of the ring, within milliseconds) about a new manager.
static __always_inline void manager_added(__u32 tgid)
{
	struct lf_event_header h = {
		.version = LF_EVENTS_VERSION,
		.kind = LF_EV_MANAGER_ADDED,
		.size = sizeof(h),
		.pid = tgid,
		.tid = (__u32)bpf_get_current_pid_tgid(),
	};

	h.ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(h.comm, sizeof(h.comm));
	if (bpf_ringbuf_output(&lock_events, &h, sizeof(h), BPF_RB_NO_WAKEUP) != 0)
		lcount(LF_LCNT_DROPS);
}

static __always_inline void manager_named(const char *comm, __u32 how)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct lf_manager_value v = {.added_by = how};

	if (bpf_map_lookup_elem(&manager_names, comm)) {
		if (!may_be_manager()) {
			lcount(LF_LCNT_IMPOSTORS);
			bpf_map_delete_elem(&lock_managers, &tgid);
			return;
		}
		mark_manager(tgid); // before the hash entry: the bitmap stays a superset
		if (bpf_map_update_elem(&lock_managers, &tgid, &v, BPF_NOEXIST) == 0) {
			lcount(LF_LCNT_MANAGER_ADDS);
			manager_added(tgid);
		}
		return;
	}
	// A manager that exec()s something else stops being one. Its close-on-exec files were
	// closed (and their locks released, seen above) before this tracepoint.
	bpf_map_delete_elem(&lock_managers, &tgid);
}

SEC("tracepoint/sched/sched_process_exec")
int tracepoint__sched__sched_process_exec(void *ctx)
{
	char comm[LF_COMM_LEN] = {};

	bpf_get_current_comm(comm, sizeof(comm));
	manager_named(comm, LF_ADDED_BY_EXEC);
	return 0;
}

// prctl(PR_SET_NAME) / a write to /proc/<pid>/comm of the thread-group leader.
SEC("tracepoint/task/task_rename")
int tracepoint__task__task_rename(struct trace_event_raw_task_rename *ctx)
{
	char comm[LF_COMM_LEN] = {};

	// A thread's name (or another process's): the process name is the leader's.
	if ((__u32)ctx->pid != (__u32)(bpf_get_current_pid_tgid() >> 32))
		return 0;
	bpf_probe_read_kernel_str(comm, sizeof(comm), ctx->newcomm);
	manager_named(comm, LF_ADDED_BY_RENAME);
	return 0;
}
