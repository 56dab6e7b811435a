// SPDX-License-Identifier: Apache-2.0
// Adoption of a failed node's monitor records; see migration.h.
#include "failover/migration.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/clock.h"
#include "common/text.h"
#include "failover/client_selection.h"

namespace lockferry::failover {
namespace {

std::string parent_dir(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos || pos == 0) return "/";
  return path.substr(0, pos);
}

// The migration already recorded for from_node at its current epoch, if any.
const store::MigrationRecord* find_adoption(const std::vector<store::MigrationRecord>& all,
                                            const std::string& from, std::uint64_t epoch) {
  const store::MigrationRecord* found = nullptr;
  for (const auto& m : all) {
    if (m.from_node == from && m.epoch == epoch) found = &m;
  }
  return found;
}

// The fence of from_node with its adopter. Epochs set by a lockferry from before the adopter
// was part of the fence name nobody: their migration record (written after the fence) is asked.
Result<store::Fence> adoption_fence(store::Store& store, const std::string& from,
                                    const std::vector<store::MigrationRecord>& migrations) {
  auto fence = store.fence(from);
  if (!fence) return fence.error();
  if (fence->epoch > 0 && fence->adopter.empty()) {
    if (const auto* m = find_adoption(migrations, from, fence->epoch)) fence->adopter = m->to_node;
  }
  return fence;
}

// A node with nothing in the store (no monitor records, no fencing epoch, no lock table, no
// migration naming it) is most likely a typo: adopting it would fence a name nobody uses and
// report success having replayed nothing.
Result<void> check_known(store::Store& store, const MigrateOptions& options,
                         const std::vector<MonitorRecord>& records, const store::Fence& fence,
                         const std::vector<store::MigrationRecord>& migrations) {
  const std::string& from = options.from_node;
  if (!records.empty() || fence.epoch != 0) return {};
  for (const auto& m : migrations)
    if (m.from_node == from || m.to_node == from) return {};
  auto nodes = store.list_nodes();
  if (!nodes) return nodes.error();
  if (std::find(nodes->begin(), nodes->end(), from) != nodes->end()) return {};
  if (options.adopt_unknown) {
    spdlog::warn(
        "migrate: node {} has nothing in {} (no records, no history): fencing it anyway, "
        "nothing to replay",
        from, store.url());
    return {};
  }
  return make_error(
      "node {} is unknown to the store {}: it has no monitor records, no lock table, no fencing "
      "epoch and no migration. The store knows {}. Check the name (a typo?), or pass --force to "
      "adopt a node with nothing stored on purpose",
      from, store.url(),
      nodes->empty() ? std::string("no node at all (is it the right store?)")
                     : fmt::format("these nodes: {}", fmt::join(*nodes, ", ")));
}

// The refusal when another node holds from_node's fence, in the words the keepalived and
// Pacemaker scripts look for ("was already adopted by").
Error adopted_by_another(const MigrateOptions& options, const store::Fence& fence,
                         const std::vector<store::MigrationRecord>& migrations) {
  const auto* record = find_adoption(migrations, options.from_node, fence.epoch);
  return make_error(
      "node {} was already adopted by {} at epoch {} ({}); refusing to replay it "
      "twice. Use --force if {} is gone and this node must take over instead",
      options.from_node, fence.adopter, fence.epoch,
      record ? clock::format_ns(record->started_ns) : std::string("it is adopting it right now"),
      fence.adopter);
}

// Runs the takeover command (or only shows it, in a dry run).
CommandRun take_over(const MigrateOptions& options) {
  CommandRun run{options.takeover_command, -1, false, ""};
  for (auto& arg : run.argv) {
    text::substitute(arg, "{from}", options.from_node);
    text::substitute(arg, "{node}", options.to_node);
    text::substitute(arg, "{service_ip}", options.recognize.service_ip);
  }
  if (options.dry_run) return run;
  spdlog::info("migrate: taking over the service of {}: {}", options.from_node,
               process::to_display(run.argv));
  auto result = process::run_command(run.argv, options.takeover_timeout);
  if (!result) {
    run.output = result.error().message;
    return run;
  }
  run.exit_code = result->exit_code;
  run.timed_out = result->timed_out;
  run.output = result->output;
  spdlog::info("migrate: takeover {}",
               run.timed_out ? "timed out" : fmt::format("exited with {}", run.exit_code));
  return run;
}

// Phase: fence from_node (or find this node already did). Sets report.epoch and repeated.
Result<void> fence_node(store::Store& store, const MigrateOptions& options,
                        const std::vector<store::MigrationRecord>& migrations,
                        const store::Fence& fence, MigrateReport& report) {
  report.epoch = fence.epoch;
  if (fence.adopter == options.to_node) {
    report.repeated = true;  // idempotent re-run after a partial or interrupted migration
    spdlog::info("migrate: {} already adopted {} at epoch {}; replaying again", options.to_node,
                 options.from_node, fence.epoch);
    return {};
  }
  if (!fence.adopter.empty() && !options.force)
    return adopted_by_another(options, fence, migrations);
  if (options.dry_run) return {};
  // Fence first: from here on the old primary's lockferryd cannot change these records. The
  // compare-and-set from the epoch read above also decides between adopters: whoever moves it
  // first is named with the new epoch, and every other adopter fails here.
  auto bumped = store.bump_epoch(options.from_node, fence.epoch, options.to_node);
  if (!bumped) {
    if (bumped.error().code == store::kErrFenced) {
      auto now = adoption_fence(store, options.from_node, migrations);
      if (now && !now->adopter.empty() && now->adopter != options.to_node)
        return adopted_by_another(options, *now, migrations);
      if (now && now->adopter == options.to_node)
        return make_error(
            "another migration of node {} on this node fenced it at epoch {} at "
            "the same moment and replays it: run this one again once it is done",
            options.from_node, now->epoch);
    }
    return make_error("could not fence node {} (another node may be adopting it right now): {}",
                      options.from_node, bumped.error().message);
  }
  report.epoch = *bumped;
  spdlog::info("migrate: fenced node {} at epoch {}", options.from_node, report.epoch);
  return {};
}

// Phase: the takeover command, when there is one. A failure is recorded in the migration record
// and ends the migration with from_node fenced and nothing replayed.
Result<void> run_takeover(store::Store& store, const MigrateOptions& options,
                          store::MigrationRecord& migration, MigrateReport& report) {
  if (options.takeover_command.empty()) return {};
  auto ran = take_over(options);
  report.takeover = ran;
  if (!options.dry_run && (ran.timed_out || ran.exit_code != 0)) {
    migration.result =
        fmt::format("takeover failed: {} {}", process::to_display(ran.argv),
                    ran.timed_out ? "timed out" : fmt::format("exited with {}", ran.exit_code));
    migration.finished_ns = clock::now_ns();
    (void)store.put_migration(migration);  // best effort: the error is returned
    return make_error(
        "{} (output: {}); node {} stays fenced and nothing was replayed: fix the "
        "service on this node and run the migration again",
        migration.result, ran.output.empty() ? "none" : ran.output, options.from_node);
  }
  if (!options.dry_run && options.after_takeover) options.after_takeover();
  return {};
}

// Phase: make this server recognise the clients whose records were replayed.
RecognizeOptions recognize_options(const MigrateOptions& options, const ReplayReport& replay) {
  RecognizeOptions recognize = options.recognize;
  if (recognize.state_dir.empty()) recognize.state_dir = parent_dir(options.statmon_dir);
  recognize.dry_run = options.dry_run;
  for (const auto& entry : replay.entries) {
    if (entry.action == "refused") continue;
    recognize.clients.push_back(entry.file_name);
    recognize.mon_names.push_back(entry.mon_name);
  }
  return recognize;
}

// Phase: the outcome, in the report and the migration record.
void finish(store::Store& store, const MigrateOptions& options, store::MigrationRecord& migration,
            MigrateReport& report) {
  report.finished_ns = clock::now_ns();
  report.ok = report.recognize.ok && report.replay.refused == 0;
  if (!report.recognize.ok)
    report.message = report.recognize.message;
  else if (report.replay.refused)
    report.message = fmt::format("{} record(s) refused", report.replay.refused);
  else
    report.message = report.recognize.message.empty() ? "ok" : report.recognize.message;

  migration.finished_ns = report.finished_ns;
  // A recognition that left clients unacknowledged finished, yet says so ("N client(s) did not
  // acknowledge SM_NOTIFY"): the store, the log and the success metric show it as sm-notify's
  // timeout did.
  migration.result = report.message;
  if (!options.dry_run) {
    if (auto r = store.put_migration(migration); !r)
      spdlog::error("migrate: could not record the finished migration: {}", r.error().message);
  }
}

// Phase: the per-client report as of now. A lock table that cannot be read leaves the lock
// counts out (logged), never the migration's result.
ClientReport clients_now(store::Store& store, const MigrateOptions& options,
                         const std::vector<MonitorRecord>& records, const MigrateReport& report) {
  AuditReport audit;
  if (auto a = audit_from_store(store, options.from_node, options.to_node))
    audit = std::move(*a);
  else
    spdlog::warn("migrate: no reclaim counts in the per-client report: {}", a.error().message);
  ClientReport out = build_client_report(
      records, notify_results(report.recognize, records, report.finished_ns), audit);
  switch (report.recognize.method) {
    case RecognizeMethod::sm_notify:
      out.notify_source = "sm-notify";
      break;
    case RecognizeMethod::notify:
      out.notify_source = "built-in notifier";
      break;
    default:
      out.notify_source =
          fmt::format("unknown: recognize {} does not notify", to_string(report.recognize.method));
  }
  return out;
}

}  // namespace

Result<MigrateReport> migrate(store::Store& store, const MigrateOptions& options) {
  if (options.from_node == options.to_node)
    return make_error(
        "cannot migrate node {} onto itself: run migrate on the adoptive node, or "
        "pass --node with this node's name",
        options.from_node);
  MigrateReport report;
  report.from_node = options.from_node;
  report.to_node = options.to_node;
  report.started_ns = clock::now_ns();

  auto records = store.list_monitor(options.from_node);
  if (!records)
    return make_error("cannot read the monitor records of node {} from {}: {}", options.from_node,
                      store.url(), records.error().message);
  if (!options.only_service_ip.empty()) {
    auto locks = store.list_locks(options.from_node);
    if (!locks)
      return make_error(
          "cannot read the lock table of node {} from {} to pick the clients of {}: {}",
          options.from_node, store.url(), options.only_service_ip, locks.error().message);
    ClientSelection picked = select_clients(*records, *locks, options.only_service_ip);
    if (!picked.left_out.empty())
      spdlog::info(
          "migrate: {} client(s) of {} locked only through other addresses than {}: "
          "not replayed ({})",
          picked.left_out.size(), options.from_node, options.only_service_ip,
          fmt::join(picked.left_out, ", "));
    *records = std::move(picked.replay);
    report.left_out = std::move(picked.left_out);
  }
  report.records = records->size();

  auto migrations = store.list_migrations();
  if (!migrations) return migrations.error();
  auto fence = adoption_fence(store, options.from_node, *migrations);
  if (!fence) return fence.error();
  if (auto known = check_known(store, options, *records, *fence, *migrations); !known)
    return known.error();
  if (auto fenced = fence_node(store, options, *migrations, *fence, report); !fenced)
    return fenced.error();

  store::MigrationRecord migration{options.from_node,
                                   options.to_node,
                                   report.epoch,
                                   report.started_ns,
                                   0,
                                   report.records,
                                   options.recognize.service_ip,
                                   to_string(options.recognize.method),
                                   "running"};
  if (!options.dry_run) {
    if (auto r = store.put_migration(migration); !r) return r.error();
  }
  if (auto taken = run_takeover(store, options, migration, report); !taken) return taken.error();

  auto replayed = replay(*records, ReplayOptions{options.statmon_dir, options.dry_run});
  if (!replayed) {
    migration.result = replayed.error().message;
    if (!options.dry_run)
      (void)store.put_migration(migration);  // best effort: the error is returned
    return replayed.error();
  }
  report.replay = std::move(*replayed);
  const RecognizeOptions recognize = recognize_options(options, report.replay);
  report.recognize = failover::recognize(recognize);
  finish(store, options, migration, report);
  if (!options.dry_run) report.clients = clients_now(store, options, *records, report);
  spdlog::info(
      "migrate: {} -> {}: {} records, {} written, {} unchanged, {} refused; recognize {}: {}",
      options.from_node, options.to_node, report.records, report.replay.written,
      report.replay.unchanged, report.replay.refused, to_string(recognize.method), report.message);
  return report;
}

std::string sm_notify_state_dir(const MigrateOptions& options) {
  // The built-in notifier keeps sm.bak/ as sm-notify does; restart-statd runs sm-notify.
  const auto m = options.recognize.method;
  if (m != RecognizeMethod::sm_notify && m != RecognizeMethod::notify &&
      m != RecognizeMethod::restart_statd)
    return {};
  return options.recognize.state_dir.empty() ? parent_dir(options.statmon_dir)
                                             : options.recognize.state_dir;
}

}  // namespace lockferry::failover
