// SPDX-License-Identifier: Apache-2.0
// lockferryd's lock grant capture ([locks]): starts the lock hooks and the lock recorder on the
// daemon's io_context, and answers `lockferry locks` and the lock part of `lockferry status`.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "common/clock.h"
#include "control/protocol.h"
#include "daemon/counter_values.h"
#include "daemon/daemon.h"
#include "daemon/lock_status.h"
#include "procfs/process.h"

namespace lockferry::daemon {

namespace {

// Whether `pid` still runs under the name it had when its locks were stored, and is a lock
// manager (a table written before managers were verified may hold an impostor's locks).
bool process_is(std::uint32_t pid, const std::string& comm,
                const std::vector<std::string>& binaries) {
  return !comm.empty() && procfs::read_comm("/proc", pid) == comm &&
         capture::why_not_a_manager(procfs::read_process_identity("/proc", pid), binaries).empty();
}

}  // namespace

void Daemon::start_locks() {
  if (!config_.locks_enabled) {
    locks_error_ = "disabled in the configuration ([locks] enabled = false)";
    return;
  }
  lock_recorder_ =
      std::make_unique<record::LockRecorder>(io_, *store_, config_.node, recorder_->epoch());
  // Locks stored by a previous run of this daemon: those of managers still running stay (their
  // releases are seen from now on), the others were released when their process went away.
  const auto& binaries = config_.lock_manager_binaries;
  if (auto r = lock_recorder_->restore([&binaries](std::uint32_t pid, const std::string& comm) {
        return process_is(pid, comm, binaries);
      });
      !r)
    spdlog::error("locks: cannot read the stored lock table of node {}: {}; starting empty",
                  config_.node, r.error().message);
  capture::LockOptions options;
  options.managers = config_.lock_managers;
  options.manager_binaries = config_.lock_manager_binaries;
  options.hook = config_.lock_hook;
  options.ring_buffer_kb = config_.lock_ring_buffer_kb;
  options.reconcile_interval = config_.lock_reconcile_interval;
  options.owner_key_path = lock_owner_key_path(config_);
  // A directory of its own next to the monitor capture's pins: each is replaced whole on start.
  if (!config_.pin_dir.empty()) options.pin_dir = config_.pin_dir + "-locks";
  auto started = capture::LockCapture::start(
      io_, options,
      [this](const capture::LockChange& c) {
        if (c.kind == capture::LockChange::Kind::reconciled)
          last_lock_reconcile_ns_ = clock::now_ns();
        lock_recorder_->on_change(c);
      },
      [this](const capture::ManagerProcess& m) {
        // The uprobe set sees a manager's own unlocks and closes, not what the kernel releases
        // when it exits: there the exit is how its locks end, not a sign of lost events.
        const bool exit_seen = !lock_capture_ || lock_capture_->hook() != capture::LockHook::uprobe;
        lock_recorder_->on_manager_gone(m.pid, exit_seen);
      });
  if (!started) {
    // Monitor records alone still make failover work; the lock table is the richer view.
    locks_error_ = started.error().message;
    spdlog::error("locks: lock grant capture unavailable: {}; monitor records are still captured",
                  locks_error_);
    return;
  }
  lock_capture_ = std::move(*started);
  // Status shows these, not config_'s: a reload may change the file but not the running capture.
  lock_options_ = options;
  locks_error_.clear();
}

void Daemon::stop_locks() {
  if (lock_capture_) {
    lock_capture_->poll();  // what the kernel already queued still counts
    lock_capture_->stop();
  }
  if (lock_recorder_) {
    lock_recorder_->flush();
    lock_recorder_->stop();
  }
}

// Only the managers change live; the other [locks] keys need a restart (daemon/reload.cpp).
void Daemon::reload_locks(const Config& fresh) {
  if (!lock_capture_ || (fresh.lock_managers == config_.lock_managers &&
                         fresh.lock_manager_binaries == config_.lock_manager_binaries))
    return;
  if (auto r = lock_capture_->set_managers(fresh.lock_managers, fresh.lock_manager_binaries); !r)
    spdlog::error("reload: keeping the lock managers {}: {}",
                  fmt::join(config_.lock_managers, ", "), r.error().message);
  else
    spdlog::info("reload: lock managers now {} (binaries {})", fmt::join(fresh.lock_managers, ", "),
                 fmt::join(fresh.lock_manager_binaries, ", "));
}

nlohmann::json Daemon::locks_status() const {
  nlohmann::json s = {{"enabled", config_.locks_enabled},
                      {"mode", lock_capture_ ? capture::to_string(lock_capture_->hook()) : "off"},
                      {"reason", lock_capture_ ? lock_capture_->hook_reason() : locks_error_}};
  if (lock_capture_) {
    const auto c = lock_capture_->counters();
    nlohmann::json managers = nlohmann::json::array();
    for (const auto& m : lock_capture_->managers())
      managers.push_back({{"pid", m.pid}, {"comm", m.comm}});
    s["managers"] = managers;
    const auto names = lock_capture_->client_names();
    s["client_names"] = {{"source", names.source}, {"reason", names.reason}};
    counters::add_json(s, counters::kLockEvents, lock_events_values(c));
    // Processes named like a lock manager that are not one: their locks are not recorded.
    s["impostors"] = counters::to_json(counters::kLockImpostors, lock_impostors_values(c));
    s["ring_buffer_kb"] = lock_options_.ring_buffer_kb;
    s["reconcile"] = lock_reconcile_json(
        c, lock_recorder_->stats(),
        std::chrono::duration_cast<std::chrono::seconds>(lock_options_.reconcile_interval),
        last_lock_reconcile_ns_);
  }
  if (lock_recorder_) {
    const auto& r = lock_recorder_->stats();
    counters::add_json(s, counters::kLockTable,
                       lock_table_values(lock_recorder_->table().size(), r));
    s["last_error"] = r.last_error;
    s["fenced"] = r.fenced;
    s["last_write"] = clock::format_ns(r.last_write_ns);
  }
  return s;
}

void Daemon::handle_locks(const nlohmann::json& request, control::ControlServer::Reply reply) {
  const std::string node = request.value("node", config_.node);
  // This node's table as of now, not as of the last batched write.
  if (node == config_.node && lock_recorder_) {
    if (lock_capture_) lock_capture_->poll();
    lock_recorder_->flush();
  }
  // Reading (and formatting) a big table is the worker's job, not the loop's.
  worker_->run<nlohmann::json>(
      [node](store::Store* store, const std::string& error) -> nlohmann::json {
        if (!store) return {{"ok", false}, {"error", error}};
        auto locks = store->list_locks(node);
        if (!locks) return {{"ok", false}, {"error", locks.error().message}};
        nlohmann::json out = nlohmann::json::array();
        for (const auto& l : *locks) out.push_back(control::to_json(l));
        return {{"ok", true}, {"result", out}};
      },
      std::move(reply));
}

}  // namespace lockferry::daemon
