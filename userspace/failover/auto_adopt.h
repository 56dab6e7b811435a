// SPDX-License-Identifier: Apache-2.0
// Automatic adoption: runs a whole migration (fence, take over, replay, recognise) of a node the
// health agent declared down, on a thread of its own with its own store connection, so the
// daemon's loop keeps heartbeating while the takeover and sm-notify run.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "failover/migration.h"

namespace lockferry::failover {

// One adoption this node ran or is running.
struct Adoption {
  std::string from_node;
  std::string reason;            // why: what the health agent saw
  std::int64_t detected_ns = 0;  // CLOCK_REALTIME when the node was declared down
  std::int64_t finished_ns = 0;  // 0 while running
  bool running = false;
  bool ok = false;
  std::string message;
  std::uint64_t epoch = 0;  // from_node's epoch after the fence
  std::size_t records = 0;
  std::vector<std::string> notified;
  std::vector<std::string> not_notified;
  RecognizeMethod recognize = RecognizeMethod::none;
  std::int32_t nsm_state = 0;                // the built-in notifier's NSM state sent
  std::vector<notify::ClientResult> notify;  // the built-in notifier's result per client
  ClientReport clients;  // per client as the migration ended (the audit has the final word)
};

class AutoAdopter {
 public:
  // `post` runs a function on the daemon's loop (completion reports go through it).
  using Post = std::function<void(std::function<void()>)>;
  using Done = std::function<void(const Adoption&, const Result<MigrateReport>&)>;

  AutoAdopter(std::string store_url, Post post);
  ~AutoAdopter();  // waits for running adoptions
  AutoAdopter(const AutoAdopter&) = delete;
  AutoAdopter& operator=(const AutoAdopter&) = delete;

  // Starts adopting options.from_node unless an adoption of it is already running here; `done`
  // runs on the loop afterwards. Returns false (and does nothing) when one is running. A node
  // with nothing in the store is adopted too (options.adopt_unknown): it is a configured peer.
  bool adopt(MigrateOptions options, std::string reason, Done done);

  // Every adoption since the daemon started, oldest first.
  std::vector<Adoption> adoptions() const;

  // Waits for running adoptions (a takeover is not interrupted half-way).
  void join();

 private:
  std::string store_url_;
  Post post_;
  mutable std::mutex mutex_;
  std::vector<Adoption> adoptions_;
  std::vector<std::thread> threads_;
};

}  // namespace lockferry::failover
