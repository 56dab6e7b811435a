// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
// Watches statd monitor directories, filtered in the kernel by directory, with one of three hook
// sets (the program table in userspace/capture/bpf_programs.cpp says which program is which):
//   fentry:     function-level hooks on the kernel paths that change directory entries (the last
//               fput of a file opened for writing, vfs_rename, vfs_unlink, vfs_link): only those
//               operations pay, and the first check is the parent directory's inode number.
//   kprobe:     the same hooks and bodies as kprobe/kretprobe, for kernels that refuse fentry.
//   tracepoint: the syscall tracepoints (creating/truncating opens, then the close of that fd,
//               renames and unlinks); once any is enabled, every syscall of every process takes
//               the kernel's tracing slow path, which is why `mode = auto` never picks them.
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "lockferry/events.h"
#include "statmon_watch.bpf.h"

// bpf_probe_read_user_str and friends are GPL-only helpers: the kernel must see a GPL-compatible
// licence string, which the GPL-2.0 half of the dual licence provides.
char LICENSE[] SEC("license") = "GPL";

// Watched directories by (dev, ino) of the directory inode. Userspace fills it from stat() and
// rewrites it on reload; the value's dir_id is what events carry.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct lf_dir_key);
	__type(value, struct lf_dir_value);
} watched_dirs SEC(".maps");

// {base directory, relative path} -> watched directory, for rename/unlink where only a path
// string is known (see struct lf_path_key in events.h).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct lf_path_key);
	__type(value, struct lf_dir_value);
} watched_paths SEC(".maps");

// Syscall arguments saved at sys_enter, keyed by thread id, consumed at sys_exit.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct lf_pending);
} pending SEC(".maps");

// Files opened for writing in a watched directory, until their fd is closed. LRU because a
// process that exits without close() never tells us (the fd table is torn down in the kernel).
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct lf_fd_key);
	__type(value, struct lf_fd_value);
} tracked_fds SEC(".maps");

// Counting filters in front of `pending` (slot: tid) and `tracked_fds` (slot: tgid): a slot
// counts the entries whose thread/process falls into it, incremented before an insert and
// decremented only after a delete that removed something, so never below the true count (LRU
// evictions and replaced entries only leave it high). A zero slot means "no entry for this
// thread/process": the exit and close programs then skip their hash lookups, which is nearly
// every open and close on the machine. Per slot rather than one global count, so that other
// processes' creates, unlinks and renames in flight (a build, a slow journal) do not turn the
// filter off for everyone; a collision only costs a lookup.
__u32 pending_slots[LF_FILTER_SLOTS];
__u32 tracked_slots[LF_FILTER_SLOTS];

// enum lf_counter, per CPU so counting needs no atomics.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LF_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// struct lf_file_event records for userspace. 1 MiB holds ~1700 events: a burst of statd
// records after a mass client reboot; a drop is counted and makes userspace rescan.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

// Per-CPU work area: path strings and map keys are too big for the 512-byte BPF stack.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lf_scratch);
} scratch SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline __u32 current_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

#define LF_SLOT(id) ((id) & (LF_FILTER_SLOTS - 1))

static __always_inline bool maybe_pending(__u32 tid)
{
	return pending_slots[LF_SLOT(tid)] != 0;
}

// Puts `value` under thread `tid` into `map`, one of the per-thread maps pending_slots count.
static __always_inline void stash_put(void *map, __u32 tid, void *value)
{
	__sync_fetch_and_add(&pending_slots[LF_SLOT(tid)], 1);
	if (bpf_map_update_elem(map, &tid, value, BPF_ANY) != 0)
		__sync_fetch_and_add(&pending_slots[LF_SLOT(tid)], -1);
}

// Deletes thread `tid`'s entry of `map`; whether there was one.
static __always_inline bool stash_del(void *map, __u32 tid)
{
	if (bpf_map_delete_elem(map, &tid) != 0)
		return false;
	__sync_fetch_and_add(&pending_slots[LF_SLOT(tid)], -1);
	return true;
}

static __always_inline void pending_put(__u32 tid, struct lf_pending *p)
{
	stash_put(&pending, tid, p);
}

static __always_inline void pending_del(__u32 tid)
{
	stash_del(&pending, tid);
}

static __always_inline void tracked_put(struct lf_fd_key *k, struct lf_fd_value *v)
{
	__sync_fetch_and_add(&tracked_slots[LF_SLOT(k->tgid)], 1);
	if (bpf_map_update_elem(&tracked_fds, k, v, BPF_ANY) != 0)
		__sync_fetch_and_add(&tracked_slots[LF_SLOT(k->tgid)], -1);
}

static __always_inline void tracked_del(struct lf_fd_key *k)
{
	if (bpf_map_delete_elem(&tracked_fds, k) == 0)
		__sync_fetch_and_add(&tracked_slots[LF_SLOT(k->tgid)], -1);
}

// The struct file behind `fd` of the current task, or NULL.
static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
	struct file *file = NULL;

	if (fd < 0 || fd >= max_fds)
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

// fd_file() for the current task, on the open and close paths that every writer on the machine
// takes: the task, its files_struct and fdtable are BTF-typed pointers (bpf_get_current_task_btf,
// 5.11+), read with plain loads instead of a probe-read helper call per field.
static __always_inline struct file *current_fd_file(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file **fds = fdt->fd;
	struct file *file = NULL;

	if (fd < 0 || fd >= fdt->max_fds)
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

static __always_inline void dentry_dir_key(struct dentry *dentry, struct lf_dir_key *key)
{
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);

	key->ino = BPF_CORE_READ(inode, i_ino);
	key->dev = BPF_CORE_READ(inode, i_sb, s_dev);
}

// Fills in the header of event `e` of `kind` from the current thread; the rest empty.
static __always_inline void init_event(struct lf_file_event *e, __u16 kind)
{
	__u64 id = bpf_get_current_pid_tgid();

	e->hdr.version = LF_EVENTS_VERSION;
	e->hdr.kind = kind;
	e->hdr.size = sizeof(*e);
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->hdr.pid = id >> 32;
	e->hdr.tid = (__u32)id;
	bpf_get_current_comm(e->hdr.comm, sizeof(e->hdr.comm));
	e->dir_id = 0;
	e->old_dir_id = 0;
	e->open_flags = 0;
	e->rename_flags = 0;
	e->ret = 0;
	e->name[0] = 0;
	e->old_name[0] = 0;
}

static __always_inline struct lf_file_event *reserve_event(__u16 kind)
{
	struct lf_file_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(LF_CNT_DROPS);
		return NULL;
	}
	init_event(e, kind);
	return e;
}

static __always_inline void submit_event(struct lf_file_event *e)
{
	bpf_ringbuf_submit(e, 0);
	count(LF_CNT_EMITS);
}

/* ---- opens: enter saves the flags, exit resolves the new fd's parent directory ---- */

static __always_inline int open_enter(__u64 flags)
{
	struct lf_pending p = {};
	__u32 tid;

	// Only opens that can create or replace content matter; this skips nearly all opens.
	if (!(flags & (LF_O_CREAT | LF_O_TRUNC)))
		return 0;
	count(LF_CNT_HITS);
	p.op = LF_OP_OPEN;
	p.flags = (__u32)flags;
	tid = current_tid();
	pending_put(tid, &p);
	return 0;
}

static __always_inline int open_exit(long ret)
{
	struct lf_pending *p;
	struct lf_fd_key fk = {};
	struct lf_dir_key dk = {};
	struct lf_dir_value *dir;
	struct lf_fd_value *fv;
	struct lf_file_event *e;
	struct dentry *dentry;
	struct file *file;
	const unsigned char *name;
	__u32 flags, tid, zero = 0;
	struct lf_scratch *s;

	tid = current_tid();
	if (!maybe_pending(tid))
		return 0; // this thread is not between enter and exit of anything we follow
	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	if (p->op != LF_OP_OPEN) {
		pending_del(tid);
		return 0;
	}
	flags = p->flags;
	pending_del(tid);
	if (ret < 0)
		return 0;

	file = current_fd_file(ret);
	if (!file) {
		count(LF_CNT_UNRESOLVED);
		return 0;
	}
	dentry = BPF_CORE_READ(file, f_path.dentry);
	dentry_dir_key(BPF_CORE_READ(dentry, d_parent), &dk);
	dir = bpf_map_lookup_elem(&watched_dirs, &dk);
	if (!dir)
		return 0;
	count(LF_CNT_MATCHED);

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	fv = &s->fd;
	name = BPF_CORE_READ(dentry, d_name.name);
	fv->file = (__u64)file;
	fv->dir_id = dir->dir_id;
	fv->open_flags = flags;
	bpf_probe_read_kernel_str(fv->name, sizeof(fv->name), name);
	fk.tgid = bpf_get_current_pid_tgid() >> 32;
	fk.fd = (__u32)ret;
	tracked_put(&fk, fv);

	e = reserve_event((flags & LF_O_EXCL) ? LF_EV_FILE_CREATED : LF_EV_FILE_UPDATED);
	if (!e)
		return 0;
	e->dir_id = dir->dir_id;
	e->open_flags = flags;
	e->ret = ret;
	bpf_probe_read_kernel_str(e->name, sizeof(e->name), name);
	submit_event(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tracepoint__syscalls__sys_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tracepoint__syscalls__sys_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int tracepoint__syscalls__sys_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = 0;

	// args[2] is a user pointer to struct open_how, whose first member is the flags.
	bpf_probe_read_user(&flags, sizeof(flags), (void *)ctx->args[2]);
	return open_enter(flags);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int tracepoint__syscalls__sys_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

// open(2) and creat(2) exist only on some architectures (x86_64, not arm64); the loader turns
// these programs off when their tracepoints are missing.
SEC("tracepoint/syscalls/sys_enter_open")
int tracepoint__syscalls__sys_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_open")
int tracepoint__syscalls__sys_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int tracepoint__syscalls__sys_enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(LF_O_CREAT | LF_O_WRONLY | LF_O_TRUNC);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int tracepoint__syscalls__sys_exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

/* ---- close of a tracked fd: the writer is done, the content is complete ---- */

SEC("tracepoint/syscalls/sys_enter_close")
int tracepoint__syscalls__sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	struct lf_fd_key fk = {};
	struct lf_pending p = {};
	struct lf_fd_value *fv;
	struct file *file;
	__u32 tid;

	fk.tgid = bpf_get_current_pid_tgid() >> 32;
	if (!tracked_slots[LF_SLOT(fk.tgid)])
		return 0; // this process has no file of a watched directory open
	fk.fd = (__u32)ctx->args[0];
	fv = bpf_map_lookup_elem(&tracked_fds, &fk);
	if (!fv)
		return 0;
	count(LF_CNT_HITS);
	// The entry may be stale (the process dup2()ed over the fd, or exec closed it): only the
	// very file we saw opened counts.
	file = current_fd_file((long)fk.fd);
	if ((__u64)file != fv->file) {
		count(LF_CNT_FD_UNTRACKED);
		tracked_del(&fk);
		return 0;
	}
	p.op = LF_OP_CLOSE;
	p.dfd = (__s32)fk.fd;
	p.file = fv->file;
	tid = current_tid();
	pending_put(tid, &p);
	return 0;
}

// Emitted at exit so that whatever close() flushes is on the file before userspace reads it.
SEC("tracepoint/syscalls/sys_exit_close")
int tracepoint__syscalls__sys_exit_close(struct trace_event_raw_sys_exit *ctx)
{
	struct lf_pending *p;
	struct lf_fd_key fk = {};
	struct lf_fd_value *fv;
	struct lf_file_event *e;
	__u64 file;
	__u32 tid;

	tid = current_tid();
	if (!maybe_pending(tid))
		return 0;
	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	if (p->op != LF_OP_CLOSE) {
		pending_del(tid);
		return 0;
	}
	fk.tgid = bpf_get_current_pid_tgid() >> 32;
	fk.fd = (__u32)p->dfd;
	file = p->file;
	pending_del(tid);

	fv = bpf_map_lookup_elem(&tracked_fds, &fk);
	// Another thread may have reused the fd number for a new tracked file in between.
	if (!fv || fv->file != file)
		return 0;
	count(LF_CNT_MATCHED);
	e = reserve_event(LF_EV_FILE_CLOSED);
	if (e) {
		e->dir_id = fv->dir_id;
		e->open_flags = fv->open_flags;
		e->ret = ctx->ret;
		bpf_probe_read_kernel_str(e->name, sizeof(e->name), fv->name);
		submit_event(e);
	}
	tracked_del(&fk);
	return 0;
}

/* ---- rename and unlink: only path strings, resolved against watched_dirs/watched_paths ---- */

struct slash_ctx {
	struct lf_scratch *s;
};

static long find_last_slash(__u32 i, void *ctx)
{
	struct lf_scratch *s = ((struct slash_ctx *)ctx)->s;

	if (i >= LF_PATH_LEN)
		return 1;
	if (s->path[i] == '/')
		s->last_slash = i;
	return 0;
}

// Resolves the directory part of user path `upath` (relative to `dfd`) to a watched dir id, 0
// if it is not watched. *name_off gets the offset of the last component in `upath`.
static __noinline __u32 resolve_dir(__s32 dfd, const char *upath, __u32 *name_off)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct lf_dir_value *dir;
	struct lf_dir_key dk = {};
	struct dentry *base;
	struct lf_scratch *s;
	__u32 zero = 0;
	struct slash_ctx sc;
	int last, start = 0, dirlen;
	__u32 len;
	long n;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	// Read at sys_exit: the kernel has just copied the string in, so its page is resident.
	n = bpf_probe_read_user_str(s->path, sizeof(s->path), upath);
	if (n <= 1 || n >= LF_PATH_LEN) {
		count(LF_CNT_UNRESOLVED);
		return 0;
	}
	// bpf_loop (5.17+) has the verifier check the callback once; an open-coded 512-step loop
	// with a branch per byte exceeds its 1M instruction budget.
	s->last_slash = -1;
	sc.s = s;
	bpf_loop(n, find_last_slash, &sc, 0);
	last = s->last_slash;

	if (s->path[0] == '/') {
		base = BPF_CORE_READ(task, fs, root.dentry);
		start = 1;
	} else if (dfd == LF_AT_FDCWD) {
		base = BPF_CORE_READ(task, fs, pwd.dentry);
	} else {
		struct file *file = fd_file(task, dfd);

		if (!file) {
			count(LF_CNT_UNRESOLVED);
			return 0;
		}
		base = BPF_CORE_READ(file, f_path.dentry);
	}

	if (last < 0) {
		// A bare name: the base directory itself must be watched.
		*name_off = 0;
		dentry_dir_key(base, &dk);
		dir = bpf_map_lookup_elem(&watched_dirs, &dk);
		return dir ? dir->dir_id : 0;
	}

	dirlen = last - start;
	if (dirlen < 0)
		dirlen = 0;
	if (dirlen >= LF_REL_LEN || last >= LF_PATH_LEN)
		return 0; // longer than any directory userspace can register
	dentry_dir_key(base, &dk);
	s->key.dev = dk.dev;
	s->key.ino = dk.ino;
	// Zero-pad, then copy the directory part with one helper call: a per-byte loop comparing
	// i < dirlen would have the verifier walk every possible length separately.
	__builtin_memset(s->key.rel, 0, sizeof(s->key.rel));
	len = dirlen;
	asm volatile("" : "+r"(len)); // keep clang from dropping the mask the verifier needs
	len &= LF_REL_LEN - 1;
	bpf_probe_read_kernel(s->key.rel, len, s->path + start);
	*name_off = last + 1;
	dir = bpf_map_lookup_elem(&watched_paths, &s->key);
	return dir ? dir->dir_id : 0;
}

static __always_inline int save_path_op(__u32 op, __s32 dfd, __u64 path, __s32 dfd2, __u64 path2,
					__u32 flags)
{
	struct lf_pending p = {};
	__u32 tid = current_tid();

	p.op = op;
	p.dfd = dfd;
	p.path = path;
	p.dfd2 = dfd2;
	p.path2 = path2;
	p.flags = flags;
	pending_put(tid, &p);
	return 0;
}

// Takes the pending entry of this thread if it is `op`; false if none.
static __always_inline bool take_pending(__u32 op, struct lf_pending *out)
{
	struct lf_pending *p;
	__u32 tid;
	bool ok;

	tid = current_tid();
	if (!maybe_pending(tid))
		return false;
	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return false;
	ok = p->op == op;
	if (ok)
		__builtin_memcpy(out, p, sizeof(*out));
	pending_del(tid);
	return ok;
}

static __always_inline int unlink_exit(long ret)
{
	struct lf_pending p = {};
	struct lf_file_event *e;
	__u32 dir_id, off = 0;

	if (!take_pending(LF_OP_UNLINK, &p) || ret != 0)
		return 0;
	count(LF_CNT_HITS);
	dir_id = resolve_dir(p.dfd, (const char *)p.path, &off);
	if (!dir_id)
		return 0;
	count(LF_CNT_MATCHED);
	e = reserve_event(LF_EV_FILE_DELETED);
	if (!e)
		return 0;
	e->dir_id = dir_id;
	bpf_probe_read_user_str(e->name, sizeof(e->name), (const char *)p.path + off);
	submit_event(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int tracepoint__syscalls__sys_enter_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	// rmdir (AT_REMOVEDIR) never removes a monitor record.
	if (ctx->args[2] & LF_AT_REMOVEDIR)
		return 0;
	return save_path_op(LF_OP_UNLINK, (__s32)ctx->args[0], ctx->args[1], 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int tracepoint__syscalls__sys_exit_unlinkat(struct trace_event_raw_sys_exit *ctx)
{
	return unlink_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_unlink")
int tracepoint__syscalls__sys_enter_unlink(struct trace_event_raw_sys_enter *ctx)
{
	return save_path_op(LF_OP_UNLINK, LF_AT_FDCWD, ctx->args[0], 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_unlink")
int tracepoint__syscalls__sys_exit_unlink(struct trace_event_raw_sys_exit *ctx)
{
	return unlink_exit(ctx->ret);
}

static __always_inline int rename_exit(long ret)
{
	struct lf_pending p = {};
	struct lf_file_event *e;
	__u32 old_id, new_id, old_off = 0, new_off = 0;

	if (!take_pending(LF_OP_RENAME, &p) || ret != 0)
		return 0;
	count(LF_CNT_HITS);
	old_id = resolve_dir(p.dfd, (const char *)p.path, &old_off);
	new_id = resolve_dir(p.dfd2, (const char *)p.path2, &new_off);
	if (!old_id && !new_id)
		return 0;
	count(LF_CNT_MATCHED);
	e = reserve_event(LF_EV_FILE_RENAMED);
	if (!e)
		return 0;
	e->dir_id = new_id;
	e->old_dir_id = old_id;
	e->rename_flags = p.flags;
	if (new_id)
		bpf_probe_read_user_str(e->name, sizeof(e->name), (const char *)p.path2 + new_off);
	if (old_id)
		bpf_probe_read_user_str(e->old_name, sizeof(e->old_name),
					(const char *)p.path + old_off);
	submit_event(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_renameat2")
int tracepoint__syscalls__sys_enter_renameat2(struct trace_event_raw_sys_enter *ctx)
{
	return save_path_op(LF_OP_RENAME, (__s32)ctx->args[0], ctx->args[1], (__s32)ctx->args[2],
			    ctx->args[3], (__u32)ctx->args[4]);
}

SEC("tracepoint/syscalls/sys_exit_renameat2")
int tracepoint__syscalls__sys_exit_renameat2(struct trace_event_raw_sys_exit *ctx)
{
	return rename_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_renameat")
int tracepoint__syscalls__sys_enter_renameat(struct trace_event_raw_sys_enter *ctx)
{
	return save_path_op(LF_OP_RENAME, (__s32)ctx->args[0], ctx->args[1], (__s32)ctx->args[2],
			    ctx->args[3], 0);
}

SEC("tracepoint/syscalls/sys_exit_renameat")
int tracepoint__syscalls__sys_exit_renameat(struct trace_event_raw_sys_exit *ctx)
{
	return rename_exit(ctx->ret);
}

// glibc's rename() uses this syscall on x86_64 (and nfs-utils calls rename()).
SEC("tracepoint/syscalls/sys_enter_rename")
int tracepoint__syscalls__sys_enter_rename(struct trace_event_raw_sys_enter *ctx)
{
	return save_path_op(LF_OP_RENAME, LF_AT_FDCWD, ctx->args[0], LF_AT_FDCWD, ctx->args[1], 0);
}

SEC("tracepoint/syscalls/sys_exit_rename")
int tracepoint__syscalls__sys_exit_rename(struct trace_event_raw_sys_exit *ctx)
{
	return rename_exit(ctx->ret);
}

/* ---- function-level hook sets: only directory-entry operations pay ---- */

// Two sets run the same bodies on the same kernel functions (__fput, vfs_unlink, vfs_rename,
// vfs_link): fentry/fexit where the kernel allows BPF trampolines, else kprobe/kretprobe. Each
// body takes `btf`, a constant at every call: fentry/fexit arguments are BTF pointers whose fields
// are plain loads (a NULL or bad pointer reads as 0); kprobe arguments are plain numbers, whose
// fields take a probe-read helper call each. Only the matching read is compiled into a program.
// (Not nested: clang refuses one CO-RE read inside another.)
#define LF_FIELD(btf, ptr, field) ((btf) ? (ptr)->field : BPF_CORE_READ(ptr, field))

// One byte per (inode number % LF_INO_FILTER) of the watched directories, set by userspace. The
// first check of every function-level program: one load once the inode number is read, before
// any map lookup or further read; a collision only costs the exact watched_dirs lookup behind it.
__u8 watched_ino_filter[LF_INO_FILTER];

// Renames seen at vfs_rename entry (names before the rename moves them), by thread, for its exit.
// pending_slots count its entries and entry_args' by thread (the tracepoint set's `pending` map
// is not loaded with the function-level sets), so the exit of every other call skips its lookups.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct lf_file_event);
} rename_stash SEC(".maps");

// kprobe set: vfs_unlink/vfs_link arguments saved at entry, by thread, for the kretprobe (which
// sees only the return value); only entries into a watched directory are saved.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct lf_entry_args);
} entry_args SEC(".maps");

// The watched directory `dir` is, or NULL.
static __always_inline struct lf_dir_value *watched_inode(bool btf, struct inode *dir)
{
	struct lf_dir_key dk = {};
	unsigned long ino = LF_FIELD(btf, dir, i_ino);
	struct super_block *sb;

	if (!watched_ino_filter[ino & (LF_INO_FILTER - 1)])
		return NULL;
	dk.ino = ino;
	sb = LF_FIELD(btf, dir, i_sb);
	dk.dev = LF_FIELD(btf, sb, s_dev);
	return bpf_map_lookup_elem(&watched_dirs, &dk);
}

static __always_inline struct lf_dir_value *watched_parent(bool btf, struct dentry *dentry)
{
	struct dentry *parent = LF_FIELD(btf, dentry, d_parent);

	return watched_inode(btf, LF_FIELD(btf, parent, d_inode));
}

// The last reference to a file is gone: for a file opened for writing in a watched directory
// its writer is done (close, exit, kill -9 alike), so the record is complete. Runs for every
// last close on the machine: the write bit and the parent's inode decide before anything else.
static __always_inline int fput_body(bool btf, struct file *file)
{
	struct lf_dir_value *dir;
	struct lf_file_event *e;
	struct dentry *dentry;

	if (!(LF_FIELD(btf, file, f_mode) & LF_FMODE_WRITE))
		return 0;
	dentry = LF_FIELD(btf, file, f_path.dentry);
	dir = watched_parent(btf, dentry);
	if (!dir)
		return 0;
	count(LF_CNT_HITS);
	// Unhashed: unlinked while open (its unlink was reported) or an O_TMPFILE never linked
	// (its link is reported): there is no record under this name to read.
	if (!LF_FIELD(btf, dentry, d_hash.pprev))
		return 0;
	count(LF_CNT_MATCHED);
	e = reserve_event(LF_EV_FILE_CLOSED);
	if (!e)
		return 0;
	e->dir_id = dir->dir_id;
	// O_EXCL is gone from f_flags by now (do_dentry_open clears it): like fanotify, a closed
	// "<name>.new" counts as old statd's temp file and the reconcile scan reads such a record.
	e->open_flags = LF_O_WRONLY;
	bpf_probe_read_kernel_str(e->name, sizeof(e->name), LF_FIELD(btf, dentry, d_name.name));
	submit_event(e);
	return 0;
}

// A directory entry of `dir` was removed (LF_EV_FILE_DELETED) or linked in (LF_EV_FILE_RENAMED
// without an old side: the new name is written): the exit of vfs_unlink and vfs_link, once the
// operation succeeded. `dentry` is the entry's dentry; its name is what userspace reads.
static __always_inline int dir_entry_changed(bool btf, struct inode *dir, struct dentry *dentry,
					     __u16 kind)
{
	struct lf_dir_value *d = watched_inode(btf, dir);
	struct lf_file_event *e;

	if (!d)
		return 0;
	count(LF_CNT_HITS);
	count(LF_CNT_MATCHED);
	e = reserve_event(kind);
	if (!e)
		return 0;
	e->dir_id = d->dir_id;
	bpf_probe_read_kernel_str(e->name, sizeof(e->name), LF_FIELD(btf, dentry, d_name.name));
	submit_event(e);
	return 0;
}

// Entry: both dentries still carry their old names and parents (the rename moves them). Both
// 6.1's renamedata (old_dir, new_dir inodes) and 6.17+'s (old_parent, new_parent dentries) have
// old_dentry and new_dentry, so only those are read. Kernels before 5.12 have no renamedata (nor
// the idmap argument of vfs_unlink/vfs_link): there the CO-RE relocation fails and neither
// function-level set loads.
static __always_inline int vfs_rename_enter(bool btf, struct renamedata *rd)
{
	struct dentry *old_dentry = LF_FIELD(btf, rd, old_dentry);
	struct dentry *new_dentry = LF_FIELD(btf, rd, new_dentry);
	struct lf_dir_value *old_dir = watched_parent(btf, old_dentry);
	struct lf_dir_value *new_dir = watched_parent(btf, new_dentry);
	// Ids, not pointers: the verifier refuses arithmetic on two map-value pointers.
	__u32 old_id = old_dir ? old_dir->dir_id : 0, new_id = new_dir ? new_dir->dir_id : 0;
	struct lf_file_event *e;
	struct lf_scratch *s;
	__u32 zero = 0;

	if (!old_id && !new_id)
		return 0;
	count(LF_CNT_HITS);
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	e = &s->ev;
	init_event(e, LF_EV_FILE_RENAMED);
	e->dir_id = new_id;
	e->old_dir_id = old_id;
	e->rename_flags = LF_FIELD(btf, rd, flags);
	if (new_id)
		bpf_probe_read_kernel_str(e->name, sizeof(e->name),
					  LF_FIELD(btf, new_dentry, d_name.name));
	if (old_id)
		bpf_probe_read_kernel_str(e->old_name, sizeof(e->old_name),
					  LF_FIELD(btf, old_dentry, d_name.name));
	stash_put(&rename_stash, e->hdr.tid, e);
	return 0;
}

// Exit: reported only if the rename happened.
static __always_inline int vfs_rename_exit(int ret)
{
	struct lf_file_event *e;
	__u32 tid = current_tid();

	if (!maybe_pending(tid))
		return 0;
	e = bpf_map_lookup_elem(&rename_stash, &tid);
	if (!e)
		return 0;
	if (ret == 0) {
		count(LF_CNT_MATCHED);
		if (bpf_ringbuf_output(&events, e, sizeof(*e), 0) == 0)
			count(LF_CNT_EMITS);
		else
			count(LF_CNT_DROPS);
	}
	stash_del(&rename_stash, tid);
	return 0;
}

/* fentry/fexit */

SEC("fentry/__fput")
int BPF_PROG(fentry__enter_fput, struct file *file)
{
	return fput_body(true, file);
}

SEC("fexit/vfs_unlink")
int BPF_PROG(fexit__exit_vfs_unlink, void *idmap, struct inode *dir, struct dentry *dentry,
	     void *delegated_inode, int ret)
{
	return ret == 0 ? dir_entry_changed(true, dir, dentry, LF_EV_FILE_DELETED) : 0;
}

// A hard link into a watched directory (lockferry's own replay links a finished O_TMPFILE into
// place): reported as a rename from nowhere, i.e. the new name is written.
SEC("fexit/vfs_link")
int BPF_PROG(fexit__exit_vfs_link, struct dentry *old_dentry, void *idmap, struct inode *dir,
	     struct dentry *new_dentry, void *delegated_inode, int ret)
{
	return ret == 0 ? dir_entry_changed(true, dir, new_dentry, LF_EV_FILE_RENAMED) : 0;
}

SEC("fentry/vfs_rename")
int BPF_PROG(fentry__enter_vfs_rename, struct renamedata *rd)
{
	return vfs_rename_enter(true, rd);
}

SEC("fexit/vfs_rename")
int BPF_PROG(fexit__exit_vfs_rename, struct renamedata *rd, int ret)
{
	return vfs_rename_exit(ret);
}

/* kprobe/kretprobe: where the kernel refuses BPF trampolines but takes kprobes */

// An entry of this thread is still stashed: the return probe of its last call never ran (the
// kernel ran out of kretprobe instances, maxactive, under many concurrent calls), so that event
// is lost. Counted as a drop, which makes userspace rescan; then the new call starts clean.
static __always_inline void drop_missed_return(__u32 tid)
{
	bool missed;

	if (!maybe_pending(tid))
		return;
	missed = stash_del(&entry_args, tid);
	missed = stash_del(&rename_stash, tid) || missed;
	if (missed)
		count(LF_CNT_DROPS);
}

// vfs_unlink/vfs_link entry: the directory's inode filter first; only an entry into a watched
// directory saves its arguments for the return probe.
static __always_inline int save_dir_entry_args(struct inode *dir, struct dentry *dentry)
{
	struct lf_entry_args a;
	__u32 tid = current_tid();

	drop_missed_return(tid);
	if (!watched_inode(false, dir))
		return 0;
	a.dir = (__u64)dir;
	a.dentry = (__u64)dentry;
	stash_put(&entry_args, tid, &a);
	return 0;
}

// vfs_unlink/vfs_link return: the body of their fexit programs, on the arguments saved at entry.
static __always_inline int dir_entry_returned(int ret, __u16 kind)
{
	struct lf_entry_args *p, a;
	__u32 tid = current_tid();

	if (!maybe_pending(tid))
		return 0;
	p = bpf_map_lookup_elem(&entry_args, &tid);
	if (!p)
		return 0;
	a = *p;
	stash_del(&entry_args, tid);
	if (ret != 0)
		return 0;
	return dir_entry_changed(false, (struct inode *)a.dir, (struct dentry *)a.dentry, kind);
}

SEC("kprobe/__fput")
int BPF_KPROBE(kprobe__enter_fput, struct file *file)
{
	return fput_body(false, file);
}

SEC("kprobe/vfs_unlink")
int BPF_KPROBE(kprobe__enter_vfs_unlink, void *idmap, struct inode *dir, struct dentry *dentry)
{
	return save_dir_entry_args(dir, dentry);
}

SEC("kretprobe/vfs_unlink")
int BPF_KRETPROBE(kretprobe__exit_vfs_unlink, int ret)
{
	return dir_entry_returned(ret, LF_EV_FILE_DELETED);
}

SEC("kprobe/vfs_link")
int BPF_KPROBE(kprobe__enter_vfs_link, struct dentry *old_dentry, void *idmap, struct inode *dir,
	       struct dentry *new_dentry)
{
	return save_dir_entry_args(dir, new_dentry);
}

SEC("kretprobe/vfs_link")
int BPF_KRETPROBE(kretprobe__exit_vfs_link, int ret)
{
	return dir_entry_returned(ret, LF_EV_FILE_RENAMED);
}

SEC("kprobe/vfs_rename")
int BPF_KPROBE(kprobe__enter_vfs_rename, struct renamedata *rd)
{
	drop_missed_return(current_tid());
	return vfs_rename_enter(false, rd);
}

SEC("kretprobe/vfs_rename")
int BPF_KRETPROBE(kretprobe__exit_vfs_rename, int ret)
{
	return vfs_rename_exit(ret);
}
