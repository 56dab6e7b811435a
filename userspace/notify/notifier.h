// SPDX-License-Identifier: Apache-2.0
// The built-in notifier (`recognize = notify`): what `sm-notify -f -v <service ip> -P <dir>` does
// for the records just replayed, but to every client at once, with a result per client.
// Steps, in sm-notify's order: move the clients' records sm/ -> sm.bak/, bump the NSM state in
// `state`, then notify; each acknowledged client leaves sm.bak/, so whoever is left there is
// still pending for a later run, rpc.statd or sm-notify itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "lockferry/result.h"
#include "notify/backoff.h"
#include "notify/client_result.h"

namespace lockferry::notify {

struct NotifyOptions {
  int state_dir_fd = -1;   // statd's state directory (parent of sm/), opened by the caller
  std::string state_dir;   // its name, for messages
  std::string service_ip;  // source address, and (canonicalised) the name sent
  std::vector<std::string> clients;  // record file names in sm/
  // The records' mon_names, by clients' index: where a file name does not resolve (resolve.h).
  std::vector<std::string> mon_names;
  std::chrono::milliseconds deadline{60000};
  Backoff backoff{};
  bool reserved_port = true;
  bool bump_state = true;  // sm-notify -n leaves it
  std::size_t window = 256;
  std::size_t lookups = 32;          // client names looked up at once (resolve.h)
  std::uint16_t rpcbind_port = 111;  // tests only
};

struct NotifyReport {
  std::int32_t state = 0;  // the NSM state sent
  std::string mon_name;    // the name sent
  std::vector<ClientResult> clients;
  std::size_t acknowledged = 0;
  std::size_t notified = 0;  // sent, unanswered
  std::size_t unreachable = 0;
  std::int64_t started_ns = 0;
  std::int64_t finished_ns = 0;
};

// Runs on its own io_context on the calling thread (recognition runs off lockferryd's loop) and
// returns when every client answered or the deadline passed. Fails only when nothing could be
// sent (state directory, state file, service IP, socket); an unreachable client is a result.
Result<NotifyReport> notify_clients(const NotifyOptions& options);

// The name sm-notify -v sends for `service_ip`: its canonical name when it resolves to one
// (getaddrinfo AI_CANONNAME, as nfs-utils does), else the address as given.
std::string notify_name(const std::string& service_ip);

}  // namespace lockferry::notify
