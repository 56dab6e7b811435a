// SPDX-License-Identifier: Apache-2.0
// Adoption of a failed node's monitor records; see migration.h.
#include "failover/migration.h"

#include <spdlog/spdlog.h>

#include "common/clock.h"

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

void substitute(std::string& arg, std::string_view key, const std::string& value) {
  for (auto pos = arg.find(key); pos != std::string::npos; pos = arg.find(key, pos + value.size()))
    arg.replace(pos, key.size(), value);
}

// Runs the takeover command (or only shows it, in a dry run).
CommandRun take_over(const MigrateOptions& options) {
  CommandRun run{options.takeover_command, -1, false, ""};
  for (auto& arg : run.argv) {
    substitute(arg, "{from}", options.from_node);
    substitute(arg, "{node}", options.to_node);
    substitute(arg, "{service_ip}", options.recognize.service_ip);
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
  spdlog::info("migrate: takeover {}", run.timed_out ? "timed out" : fmt::format("exited with {}", run.exit_code));
  return run;
}

}  // namespace

Result<MigrateReport> migrate(store::Store& store, const MigrateOptions& options) {
  if (options.from_node == options.to_node)
    return make_error("cannot migrate node {} onto itself: run migrate on the adoptive node, or "
                      "pass --node with this node's name", options.from_node);
  MigrateReport report;
  report.from_node = options.from_node;
  report.to_node = options.to_node;
  report.started_ns = clock::now_ns();

  auto records = store.list_monitor(options.from_node);
  if (!records)
    return make_error("cannot read the monitor records of node {} from {}: {}", options.from_node,
                      store.url(), records.error().message);
  report.records = records->size();

  auto epoch = store.epoch(options.from_node);
  if (!epoch) return epoch.error();
  auto migrations = store.list_migrations();
  if (!migrations) return migrations.error();

  report.epoch = *epoch;
  const auto* previous = find_adoption(*migrations, options.from_node, *epoch);
  if (previous && previous->to_node == options.to_node) {
    report.repeated = true;  // idempotent re-run after a partial or interrupted migration
    spdlog::info("migrate: {} already adopted {} at epoch {}; replaying again", options.to_node,
                 options.from_node, *epoch);
  } else if (previous && !options.force) {
    return make_error("node {} was already adopted by {} at epoch {} ({}); refusing to replay it "
                      "twice. Use --force if {} is gone and this node must take over instead",
                      options.from_node, previous->to_node, *epoch,
                      clock::format_ns(previous->started_ns), previous->to_node);
  } else if (!options.dry_run) {
    // Fence first: from here on the old primary's lockferryd cannot change these records.
    auto bumped = store.bump_epoch(options.from_node, *epoch);
    if (!bumped)
      return make_error("could not fence node {} (another node may be adopting it right now): {}",
                        options.from_node, bumped.error().message);
    report.epoch = *bumped;
    spdlog::info("migrate: fenced node {} at epoch {}", options.from_node, report.epoch);
  }

  store::MigrationRecord migration{options.from_node, options.to_node, report.epoch,
                                   report.started_ns,  0, report.records,
                                   options.recognize.service_ip,
                                   to_string(options.recognize.method), "running"};
  if (!options.dry_run) {
    if (auto r = store.put_migration(migration); !r) return r.error();
  }

  if (!options.takeover_command.empty()) {
    auto ran = take_over(options);
    report.takeover = ran;
    if (!options.dry_run && (ran.timed_out || ran.exit_code != 0)) {
      migration.result = fmt::format("takeover failed: {} {}", process::to_display(ran.argv),
                                     ran.timed_out ? "timed out" : fmt::format("exited with {}", ran.exit_code));
      migration.finished_ns = clock::now_ns();
      (void)store.put_migration(migration);  // best effort: the error is returned
      return make_error("{} (output: {}); node {} stays fenced and nothing was replayed: fix the "
                        "service on this node and run the migration again", migration.result,
                        ran.output.empty() ? "none" : ran.output, options.from_node);
    }
    if (!options.dry_run && options.after_takeover) options.after_takeover();
  }

  auto replayed = replay(*records, ReplayOptions{options.statmon_dir, options.dry_run});
  if (!replayed) {
    migration.result = replayed.error().message;
    if (!options.dry_run) (void)store.put_migration(migration);  // best effort: the error is returned
    return replayed.error();
  }
  report.replay = std::move(*replayed);

  RecognizeOptions recognize = options.recognize;
  if (recognize.state_dir.empty()) recognize.state_dir = parent_dir(options.statmon_dir);
  recognize.dry_run = options.dry_run;
  for (const auto& entry : report.replay.entries) {
    if (entry.action != "refused") recognize.clients.push_back(entry.file_name);
  }
  report.recognize = failover::recognize(recognize);

  report.finished_ns = clock::now_ns();
  report.ok = report.recognize.ok && report.replay.refused == 0;
  if (!report.recognize.ok) report.message = report.recognize.message;
  else if (report.replay.refused) report.message = fmt::format("{} record(s) refused", report.replay.refused);
  else report.message = report.recognize.message.empty() ? "ok" : report.recognize.message;

  migration.finished_ns = report.finished_ns;
  migration.result = report.ok ? "ok" : report.message;
  if (!options.dry_run) {
    if (auto r = store.put_migration(migration); !r)
      spdlog::error("migrate: could not record the finished migration: {}", r.error().message);
  }
  spdlog::info("migrate: {} -> {}: {} records, {} written, {} unchanged, {} refused; recognize {}: {}",
               options.from_node, options.to_node, report.records, report.replay.written,
               report.replay.unchanged, report.replay.refused, to_string(recognize.method),
               report.ok ? "ok" : report.message);
  return report;
}

}  // namespace lockferry::failover
