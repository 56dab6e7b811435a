// SPDX-License-Identifier: Apache-2.0
// Migration: the whole adoption of one node's monitor records by this node — fence the old
// primary, replay its records, make this server recognise them, and record that it happened.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "failover/client_report.h"
#include "failover/recognizer.h"
#include "failover/replayer.h"
#include "store/store.h"

namespace lockferry::failover {

struct MigrateOptions {
  std::string from_node;  // the node being adopted (old primary)
  std::string to_node;    // this node
  std::string statmon_dir = "/var/lib/nfs/sm";
  // Replay only the clients that locked through this server address (client_selection.h) when
  // set: `lockferry migrate --service-ip IP` on a node with several service IPs. "" = all.
  std::string only_service_ip;
  RecognizeOptions recognize;  // state_dir defaults to the parent of statmon_dir
  bool dry_run = false;
  // Adopt even if another node already adopted from_node at its current epoch.
  bool force = false;
  // Adopt a node the store has never heard of (no monitor records, lock table, fencing epoch or
  // migration): without it that is refused as a likely typo, naming the nodes the store knows.
  // `lockferry migrate --force` sets it; so does AutoAdopter (its peers are configured).
  bool adopt_unknown = false;
  // Takes the service on this node (service IP, NFS server started in grace) when lockferryd
  // drives the failover itself: run after fencing — so only the node that won the fence takes
  // the service — and before replay. "{from}", "{node}" and "{service_ip}" in any argument are
  // replaced. Empty: the caller (a cluster manager, an operator) has already done it.
  std::vector<std::string> takeover_command;
  std::chrono::seconds takeover_timeout{120};
  // Called after a successful takeover, before replay: lockferryd uses it to have its lock
  // capture find the lock manager the takeover just started, before any client reclaims.
  std::function<void()> after_takeover;
};

struct MigrateReport {
  std::string from_node;
  std::string to_node;
  std::uint64_t epoch = 0;  // from_node's fencing epoch after the adoption
  bool repeated = false;    // this node had already adopted from_node at this epoch
  std::size_t records = 0;
  std::vector<std::string> left_out;   // clients not replayed: locked through other addresses only
  std::optional<CommandRun> takeover;  // when a takeover command ran (or would, in a dry run)
  ReplayReport replay;
  RecognizeReport recognize;
  // Per client as of the migration's end: notified or not, and the locks reclaimed so far
  // (clients reclaim after the notification: `lockferry audit` has the final word).
  ClientReport clients;
  std::int64_t started_ns = 0;
  std::int64_t finished_ns = 0;
  bool ok = false;
  std::string message;
};

// Order (docs/user-guide.md, "Order matters"): fence, take over (the takeover command, if any),
// replay, then recognise — the NFS service must answer on the service IP (and be in grace) before
// recognition notifies clients: either the takeover command starts it, or the caller did before.
// Fencing names this node as the adopter in the same atomic step that sets the new epoch
// (Store::bump_epoch), so of several nodes adopting from_node at once exactly one wins and the
// others are refused naming it, however their steps interleave.
// Running it again on the same node re-replays idempotently without bumping the epoch again
// (also after it was interrupted between the fence and the migration record).
// Fails (as a value) when the store is unreachable, another node already adopted from_node (or
// won the fence first), from_node is unknown to the store (unless adopt_unknown), the takeover
// command fails (from_node stays fenced; nothing is replayed) or the statd directory is unusable;
// a failed migration can simply be run again.
Result<MigrateReport> migrate(store::Store& store, const MigrateOptions& options);

// The state directory whose sm.bak/ tells who has not acknowledged SM_NOTIFY yet: the
// recognition's state_dir, else the parent of statmon_dir; "" when recognition does not notify
// through it (sm-notify, restart-statd and the built-in notifier do).
std::string sm_notify_state_dir(const MigrateOptions& options);

}  // namespace lockferry::failover
