// SPDX-License-Identifier: Apache-2.0
// The records lockferry keeps in its store: what statd monitors, and which locks exist.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace lockferry {

// One statd monitor record (one file in the monitor directory, e.g. /var/lib/nfs/sm/<client>),
// plus where and when lockferry saw it. The statd fields round-trip byte-exactly with the
// nfs-utils file format (see statmon/record.h).
struct MonitorRecord {
  // --- where it came from ---
  std::string node;                // node name of the server whose statd wrote it
  std::uint64_t epoch = 0;         // fencing epoch of the writer (see store/store.h)
  std::string file_name;           // name of the file in the monitor directory
  std::int64_t first_seen_ns = 0;  // CLOCK_REALTIME, when lockferry first captured it
  std::int64_t last_seen_ns = 0;   // CLOCK_REALTIME, when lockferry last captured it

  // --- the statd record itself (nfs-utils support/nsm/file.c) ---
  std::uint32_t addr = 0;  // IPv4 address as statd writes it (the in-memory s_addr, %08x)
  std::uint32_t prog = 0;  // RPC program to call back (100021 = NLM)
  std::uint32_t vers = 0;
  std::uint32_t proc = 0;
  std::array<std::uint8_t, 16> priv{};  // opaque cookie from the lock manager
  std::string mon_name;                 // the monitored peer (the NFS client)
  std::string my_name;                  // the name the lock manager gave for this host
  std::string raw;                      // the exact line read from the file, newline included

  bool operator==(const MonitorRecord&) const = default;
};

// One byte-range lock a lock manager (kernel lockd, ganesha.nfsd) holds right now, as the
// kernel granted it (captured from posix_lock_inode). A node's lock table is the set of these;
// ranges of one (dev, ino, owner) never overlap, and adjacent ones of the same type are merged,
// as the kernel keeps them.
struct LockRecord {
  // End value meaning "to the end of the file" (the kernel's OFFSET_MAX, l_len 0).
  static constexpr std::uint64_t kToEndOfFile = UINT64_MAX;

  std::string node;               // node name of the server whose lock manager holds it
  std::uint64_t epoch = 0;        // fencing epoch of the writer (see store/store.h)
  std::string manager_comm;       // lock manager process name ("lockd", "ganesha.nfsd")
  std::uint32_t manager_pid = 0;  // its tgid
  std::uint64_t dev = 0;  // device of the file's filesystem, kernel encoding (major << 20 | minor)
  std::uint64_t ino = 0;
  std::string path;  // as far as the kernel's dentry chain gave it; "" if unknown
  std::uint64_t start = 0;
  std::uint64_t end = kToEndOfFile;  // inclusive, as the kernel's fl_end
  std::string type;                  // "read" or "write"
  std::uint64_t owner = 0;  // opaque: the kernel's lock owner (files_struct, OFD file, lockd owner)
  std::int32_t owner_pid = 0;   // the kernel's fl_pid: the locking process, for OFD locks too
                                // (only /proc/locks shows those as -1)
  std::int64_t granted_ns = 0;  // CLOCK_REALTIME of the grant (the oldest, for merged ranges)
  std::string nlm_host;  // kernel lockd only, where the kernel's BTF tells it: the NLM client
  // Kernel lockd only, likewise (nlm_host.h_addr, h_srcaddr): the NLM client's address and the
  // server address it locked through (the service IP), as text ("192.0.2.10", "2001:db8::1");
  // "" if unknown. `lockferry migrate --service-ip` replays the clients of one address.
  std::string client_addr;
  std::string server_addr;

  bool operator==(const LockRecord&) const = default;
};

}  // namespace lockferry
