// SPDX-License-Identifier: Apache-2.0
// The records lockferry keeps in its store: what statd monitors, and (later) which locks exist.
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
  std::string node;       // node name of the server whose statd wrote it
  std::uint64_t epoch = 0;  // fencing epoch of the writer (see store/store.h)
  std::string file_name;  // name of the file in the monitor directory
  std::int64_t first_seen_ns = 0;  // CLOCK_REALTIME, when lockferry first captured it
  std::int64_t last_seen_ns = 0;   // CLOCK_REALTIME, when lockferry last captured it

  // --- the statd record itself (nfs-utils support/nsm/file.c) ---
  std::uint32_t addr = 0;  // IPv4 address as statd writes it (the in-memory s_addr, %08x)
  std::uint32_t prog = 0;  // RPC program to call back (100021 = NLM)
  std::uint32_t vers = 0;
  std::uint32_t proc = 0;
  std::array<std::uint8_t, 16> priv{};  // opaque cookie from the lock manager
  std::string mon_name;  // the monitored peer (the NFS client)
  std::string my_name;   // the name the lock manager gave for this host
  std::string raw;       // the exact line read from the file, newline included

  bool operator==(const MonitorRecord&) const = default;
};

}  // namespace lockferry
