// SPDX-License-Identifier: Apache-2.0
// lockferry: the operator's command line — status, records, migrate — talking to lockferryd over
// its control socket, or reading the store directly with --store (for cluster scripts).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/clock.h"
#include "common/counters.h"
#include "common/log.h"
#include "common/text.h"
#include "config/config.h"
#include "config/migrate_defaults.h"
#include "control/client.h"
#include "control/protocol.h"
#include "failover/audit.h"
#include "failover/migration.h"
#include "store/copy.h"
#include "store/store.h"

namespace {

using namespace lockferry;
using nlohmann::json;

struct Globals {
  std::string config_path = daemon::kDefaultConfigPath;
  std::string socket;
  std::string store_url;
  bool json_output = false;
  bool verbose = false;
};

// Defaults come from the config file when there is one, so `lockferry migrate --from A` on a
// configured node needs nothing else.
daemon::Config defaults(const Globals& g) {
  struct stat st {};
  if (::stat(g.config_path.c_str(), &st) == 0) {
    auto cfg = daemon::load_config(g.config_path);
    if (cfg) return *cfg;
    spdlog::warn("ignoring {}: {}", g.config_path, cfg.error().message);
  }
  auto cfg = daemon::parse_config("", "defaults");
  return cfg ? *cfg : daemon::Config{};
}

// `j` with every string (and object key) escaped for a terminal (text::display_safe): what the
// tables print comes from the store, where lock paths, client names and migration results are
// whatever a client, a local user or another node put there. --json prints the exact text.
json displayable(const json& j) {
  switch (j.type()) {
    case json::value_t::string:
      return text::display_safe(j.get_ref<const std::string&>());
    case json::value_t::array: {
      json out = json::array();
      for (const auto& item : j) out.push_back(displayable(item));
      return out;
    }
    case json::value_t::object: {
      json out = json::object();
      for (const auto& [key, value] : j.items()) out[text::display_safe(key)] = displayable(value);
      return out;
    }
    default:
      return j;
  }
}

int fail(const std::string& message, const Globals& g) {
  if (g.json_output) {
    std::cout << control::error_response(message).dump(2) << "\n";
  } else {
    std::cerr << "lockferry: " << text::display_safe(message) << "\n";
  }
  return 1;
}

Result<std::unique_ptr<store::Store>> open(const Globals& g) {
  return store::open_store(g.store_url);
}

Result<json> ask_daemon(const Globals& g, const json& request, std::chrono::seconds timeout) {
  std::string socket = g.socket.empty() ? defaults(g).socket_path : g.socket;
  return control::request(socket, request, timeout);
}

// The [locks] part of `lockferry status`.
void print_locks_status(const json& l) {
  fmt::print("locks:          {} ({})\n", l["mode"].get<std::string>(),
             l["reason"].get<std::string>());
  if (l.contains("managers")) {
    std::vector<std::string> managers;
    for (const auto& m : l["managers"])
      managers.push_back(
          fmt::format("{} (pid {})", m["comm"].get<std::string>(), m["pid"].get<std::uint32_t>()));
    fmt::print("  managers:     {}\n", managers.empty()
                                           ? std::string("none running")
                                           : fmt::format("{}", fmt::join(managers, ", ")));
    fmt::print("  events:       {}\n", counters::row(counters::kLockEvents, l));
  }
  if (l.contains("client_names"))
    fmt::print("  client names: {} ({})\n", l["client_names"]["source"].get<std::string>(),
               l["client_names"]["reason"].get<std::string>());
  if (l.contains("impostors") && l["impostors"].value("processes", std::uint64_t{0}) > 0)
    fmt::print("  impostors:    {}\n", counters::row(counters::kLockImpostors, l["impostors"]));
  // An older lockferryd has no lock reconcile: print only what it sent.
  if (l.contains("ring_buffer_kb"))
    fmt::print("  ring buffer:  {} KiB\n", l["ring_buffer_kb"].get<std::uint32_t>());
  if (l.contains("reconcile")) {
    const json& rc = l["reconcile"];
    const auto interval = rc["interval_s"].get<std::int64_t>();
    fmt::print("  reconcile:    {}, {}, last {}\n", counters::row(counters::kLockReconcile, rc),
               interval > 0 ? fmt::format("every {} s", interval) : std::string("only after drops"),
               rc["last"].get<std::string>());
  }
  if (l.contains("held")) {
    fmt::print("  table:        {}, last written {}{}\n", counters::row(counters::kLockTable, l),
               l["last_write"].get<std::string>(), l["fenced"].get<bool>() ? ", FENCED" : "");
    if (!l["last_error"].get<std::string>().empty())
      fmt::print("  last error:   {}\n", l["last_error"].get<std::string>());
  }
}

int cmd_status(const Globals& g) {
  auto status = ask_daemon(g, {{"command", "status"}}, std::chrono::seconds(10));
  if (!status) return fail(status.error().message, g);
  if (g.json_output) {
    std::cout << status->dump(2) << "\n";
    return 0;
  }
  const json s = displayable(*status);
  const json& c = s["capture"];
  const json& r = s["records"];
  fmt::print("node:           {} (fencing epoch {}{})\n", s["node"].get<std::string>(),
             s["epoch"].get<std::uint64_t>(),
             s["fenced"].get<bool>() ? ", FENCED: adopted by another node" : "");
  fmt::print("store:          {}\n", s["store"].get<std::string>());
  if (s.value("store_backlog", std::uint64_t{0}) > 0)
    fmt::print("  backlog:      {} writes waiting for the database (not stored yet)\n",
               s["store_backlog"].get<std::uint64_t>());
  fmt::print("monitor dirs:   {}\n",
             fmt::join(s["monitor_dirs"].get<std::vector<std::string>>(), ", "));
  fmt::print("capture:        {} ({})\n", c["mode"].get<std::string>(),
             c["reason"].get<std::string>());
  fmt::print("  events:       {}\n", counters::row(counters::kCapture, c));
  fmt::print("records:        {}\n", counters::row(counters::kRecords, r));
  if (!r["last_error"].get<std::string>().empty())
    fmt::print("  last error:   {}\n", r["last_error"].get<std::string>());
  fmt::print("reconcile:      {}, every {} s, last {}\n",
             counters::row(counters::kReconcile, s["reconcile"]),
             s["reconcile"]["interval_s"].get<std::int64_t>(),
             s["reconcile"]["last"].get<std::string>());
  fmt::print("running since:  {} (version {})\n", s["started"].get<std::string>(),
             s["version"].get<std::string>());
  if (s.contains("health")) {
    const json& h = s["health"];
    std::vector<std::string> peers;
    for (const auto& p : h["peers"])
      peers.push_back(p["node"].get<std::string>() + " " + p["state"].get<std::string>());
    fmt::print("health:         {}; peers: {} (lockferry health)\n",
               h["local"]["reason"].get<std::string>(), fmt::join(peers, ", "));
  }
  if (s.contains("locks")) print_locks_status(s["locks"]);
  // An older lockferryd does not report its reloads.
  if (s.contains("reload") && !s["reload"]["last"].get<std::string>().empty()) {
    const json& rl = s["reload"];
    fmt::print("reload:         last {}{}{}\n", rl["last"].get<std::string>(),
               rl["ok"].get<bool>() ? "" : ", FAILED: " + rl["error"].get<std::string>(),
               rl["applied"].empty()
                   ? std::string()
                   : fmt::format(", applied {}",
                                 fmt::join(rl["applied"].get<std::vector<std::string>>(), ", ")));
    for (const auto& change : rl["needs_restart"])
      fmt::print("  needs a restart: {}\n", change.get<std::string>());
  }
  return 0;
}

void print_records(const json& records) {
  fmt::print("{:<24} {:<24} {:<16} {:<24} {}\n", "FILE", "CLIENT (mon_name)", "ADDRESS", "MY_NAME",
             "LAST SEEN");
  for (const auto& r : records) {
    fmt::print("{:<24} {:<24} {:<16} {:<24} {}\n", r["file_name"].get<std::string>(),
               r["mon_name"].get<std::string>(), r["addr"].get<std::string>(),
               r["my_name"].get<std::string>(), r["last_seen"].get<std::string>());
  }
}

int cmd_records(const Globals& g, std::string node) {
  json records = json::array();
  if (!g.store_url.empty()) {
    auto store = open(g);
    if (!store) return fail(store.error().message, g);
    if (node.empty()) node = defaults(g).node;
    auto list = (*store)->list_monitor(node);
    if (!list) return fail(list.error().message, g);
    for (const auto& r : *list) records.push_back(control::to_json(r));
  } else {
    json request{{"command", "records"}};
    if (!node.empty()) request["node"] = node;
    auto answer = ask_daemon(g, request, std::chrono::seconds(10));
    if (!answer) return fail(answer.error().message, g);
    records = *answer;
  }
  if (g.json_output)
    std::cout << records.dump(2) << "\n";
  else
    print_records(displayable(records));
  return 0;
}

// " client NAME (ADDR) via SERVER-ADDR" as far as the lock record tells (kernel lockd), else "".
std::string client_text(const json& l) {
  const auto field = [&](const char* key) { return l.value(key, std::string()); };
  std::string out;
  if (!field("nlm_host").empty()) out += " client " + field("nlm_host");
  if (!field("client_addr").empty())
    out += out.empty() ? " client " + field("client_addr") : " (" + field("client_addr") + ")";
  if (!field("server_addr").empty()) out += " via " + field("server_addr");
  return out;
}

void print_locks(const json& locks) {
  fmt::print("{:<40} {:<24} {:<6} {:<22} {:<22} {}\n", "FILE", "RANGE", "TYPE", "MANAGER", "OWNER",
             "GRANTED");
  for (const auto& l : locks) {
    const std::string end =
        l["end"].is_null() ? "EOF" : std::to_string(l["end"].get<std::uint64_t>());
    std::string file = l["path"].get<std::string>();
    if (file.empty())
      file =
          fmt::format("dev {} ino {}", l["dev"].get<std::string>(), l["ino"].get<std::uint64_t>());
    fmt::print("{:<40} {:<24} {:<6} {:<22} {:<22} {}{}\n", file,
               fmt::format("{}-{}", l["start"].get<std::uint64_t>(), end),
               l["type"].get<std::string>(),
               fmt::format("{}/{}", l["manager_comm"].get<std::string>(),
                           l["manager_pid"].get<std::uint32_t>()),
               l["owner"].get<std::string>(), l["granted"].get<std::string>(), client_text(l));
  }
}

// The locks a node's lock managers hold, from lockferryd (this node's current table) or the store.
int cmd_locks(const Globals& g, std::string node) {
  json locks = json::array();
  if (!g.store_url.empty()) {
    auto store = open(g);
    if (!store) return fail(store.error().message, g);
    if (node.empty()) node = defaults(g).node;
    auto list = (*store)->list_locks(node);
    if (!list) return fail(list.error().message, g);
    for (const auto& l : *list) locks.push_back(control::to_json(l));
  } else {
    json request{{"command", "locks"}};
    if (!node.empty()) request["node"] = node;
    auto answer = ask_daemon(g, request, std::chrono::seconds(10));
    if (!answer) return fail(answer.error().message, g);
    locks = *answer;
  }
  if (g.json_output)
    std::cout << locks.dump(2) << "\n";
  else
    print_locks(displayable(locks));
  return 0;
}

int cmd_nodes(const Globals& g) {
  if (g.store_url.empty())
    return fail(
        "nodes reads the store directly: pass --store URL (the 'store' of lockferryd's "
        "config, e.g. --store dir:///srv/shared/lockferry)",
        g);
  auto store = open(g);
  if (!store) return fail(store.error().message, g);
  auto nodes = (*store)->list_nodes();
  if (!nodes) return fail(nodes.error().message, g);
  json out = json::array();
  for (const auto& n : *nodes) {
    auto epoch = (*store)->epoch(n);
    auto recs = (*store)->list_monitor(n);
    out.push_back(
        {{"node", n}, {"epoch", epoch ? *epoch : 0}, {"records", recs ? recs->size() : 0}});
  }
  if (g.json_output) {
    std::cout << out.dump(2) << "\n";
  } else {
    fmt::print("{:<24} {:>8} {:>8}\n", "NODE", "EPOCH", "RECORDS");
    for (const auto& n : displayable(out))
      fmt::print("{:<24} {:>8} {:>8}\n", n["node"].get<std::string>(),
                 n["epoch"].get<std::uint64_t>(), n["records"].get<std::size_t>());
  }
  return 0;
}

int cmd_migrations(const Globals& g) {
  if (g.store_url.empty())
    return fail(
        "migrations reads the store directly: pass --store URL (the 'store' of lockferryd's "
        "config, e.g. --store dir:///srv/shared/lockferry)",
        g);
  auto store = open(g);
  if (!store) return fail(store.error().message, g);
  auto list = (*store)->list_migrations();
  if (!list) return fail(list.error().message, g);
  json out = json::array();
  for (const auto& m : *list) out.push_back(control::to_json(m));
  if (g.json_output) {
    std::cout << out.dump(2) << "\n";
  } else {
    fmt::print("{:<12} {:<12} {:>6} {:>8} {:<26} {}\n", "FROM", "TO", "EPOCH", "RECORDS", "STARTED",
               "RESULT");
    for (const auto& m : displayable(out))
      fmt::print("{:<12} {:<12} {:>6} {:>8} {:<26} {}\n", m["from_node"].get<std::string>(),
                 m["to_node"].get<std::string>(), m["epoch"].get<std::uint64_t>(),
                 m["records"].get<std::size_t>(), m["started"].get<std::string>(),
                 m["result"].get<std::string>());
  }
  return 0;
}

// The built-in notifier's clients that did not acknowledge, with why (the first few of many).
void print_unacknowledged(const json& rec) {
  if (!rec.contains("clients")) return;
  constexpr std::size_t kShown = 20;
  std::size_t shown = 0, left = 0;
  for (const auto& c : rec["clients"]) {
    if (c["status"] == "acknowledged") continue;
    if (shown++ >= kShown) {
      ++left;
      continue;
    }
    fmt::print("  {} {} ({}): {}\n", c["status"].get<std::string>(),
               text::display_safe(c["client"].get<std::string>()), c["address"].get<std::string>(),
               text::display_safe(c["error"].get<std::string>()));
  }
  if (left) fmt::print("  ... and {} more (--json lists every client)\n", left);
}

// The per-client failover report ("client_report" of migrate and audit): one row per client.
void print_client_report(const json& r) {
  if (!r.is_object() || !r.contains("clients")) return;
  fmt::print("per client (notification from {}):\n", r["notify_source"].get<std::string>());
  fmt::print("  {:<24} {:<13} {:>6} {:>10} {:>10} {:>14}  {}\n", "CLIENT", "NOTIFY", "LOCKS",
             "RECLAIMED", "DIFFERENT", "NOT RECLAIMED", "OUTCOME");
  for (const auto& c : r["clients"]) {
    const std::string name = c["client"].get<std::string>();
    fmt::print("  {:<24} {:<13} {:>6} {:>10} {:>10} {:>14}  {}\n",
               name.empty() ? "(not named)" : name, c["notify"].get<std::string>(),
               c["locks_held_before"].get<std::size_t>(), c["reclaimed"].get<std::size_t>(),
               c["different_range"].get<std::size_t>(), c["not_reclaimed"].get<std::size_t>(),
               c["outcome"].get<std::string>());
  }
}

void print_migrate_report(const json& r) {
  fmt::print("migrate {} -> {} (fencing epoch {}{})\n", r["from_node"].get<std::string>(),
             r["to_node"].get<std::string>(), r["epoch"].get<std::uint64_t>(),
             r["repeated"].get<bool>() ? ", repeated" : "");
  if (r.contains("takeover") && r["takeover"].is_object()) {
    const json& t = r["takeover"];
    fmt::print("takeover:\n  $ {}  -> {}\n", t["command"].get<std::string>(),
               t["timed_out"].get<bool>() ? std::string("timed out")
                                          : fmt::format("exit {}", t["exit_code"].get<int>()));
  }
  const json& rep = r["replay"];
  fmt::print("replay into {}: {} records, {} written, {} unchanged, {} refused\n",
             rep["statmon_dir"].get<std::string>(), r["records"].get<std::size_t>(),
             rep["written"].get<std::size_t>(), rep["unchanged"].get<std::size_t>(),
             rep["refused"].get<std::size_t>());
  if (r.contains("left_out") && !r["left_out"].empty())
    fmt::print("  left out (locked only through other addresses): {}\n",
               fmt::join(r["left_out"].get<std::vector<std::string>>(), ", "));
  for (const auto& e : rep["entries"]) {
    fmt::print("  {:<10} {}{}\n", e["action"].get<std::string>(), e["file_name"].get<std::string>(),
               e.contains("reason") ? " (" + e["reason"].get<std::string>() + ")" : "");
  }
  const json& rec = r["recognize"];
  fmt::print("recognize ({}):\n", rec["method"].get<std::string>());
  for (const auto& c : rec["commands"]) {
    fmt::print("  $ {}  -> {}\n", c["command"].get<std::string>(),
               c["timed_out"].get<bool>() ? std::string("timed out")
                                          : fmt::format("exit {}", c["exit_code"].get<int>()));
  }
  if (!rec["notified"].empty())
    fmt::print("  notified: {}\n",
               fmt::join(rec["notified"].get<std::vector<std::string>>(), ", "));
  if (!rec["not_notified"].empty())
    fmt::print("  NOT notified: {}\n",
               fmt::join(rec["not_notified"].get<std::vector<std::string>>(), ", "));
  print_unacknowledged(rec);
  if (r.contains("client_report")) print_client_report(r["client_report"]);
  fmt::print("{}: {} ({} ms)\n", r["ok"].get<bool>() ? "OK" : "FAILED",
             r["message"].get<std::string>(), r["duration_ms"].get<std::int64_t>());
}

int cmd_migrate(const Globals& g, const json& request) {
  json report;
  if (!g.store_url.empty()) {
    auto base = daemon::migrate_defaults(defaults(g));
    if (!base) return fail(base.error().message, g);
    auto options = control::migrate_options(request, *base);
    if (!options) return fail(options.error().message, g);
    auto store = open(g);
    if (!store) return fail(store.error().message, g);
    auto result = failover::migrate(**store, *options);
    if (!result) return fail(result.error().message, g);
    report = control::to_json(*result);
  } else {
    auto answer = ask_daemon(g, request, std::chrono::seconds(3600));
    if (!answer) return fail(answer.error().message, g);
    report = *answer;
  }
  if (g.json_output)
    std::cout << report.dump(2) << "\n";
  else
    print_migrate_report(displayable(report));
  return report.value("ok", false) ? 0 : 3;
}

void print_health(const json& h) {
  const json& l = h["local"];
  fmt::print(
      "node:        {} ({}{}{}) - {}\n", h["node"].get<std::string>(),
      l["healthy"].get<bool>() ? (l["serving"].get<bool>() ? "serving" : "standby") : "UNHEALTHY",
      l["set_down"].get<bool>() ? ", SET DOWN" : "",
      l["fit"].get<bool>() ? "" : ", not fit to adopt", l["reason"].get<std::string>());
  if (h["heartbeats"].get<bool>())
    fmt::print("heartbeats:  on {}, every {} ms, dead after {} ms\n",
               h["listen"].get<std::string>(), h["interval_ms"].get<std::int64_t>(),
               h["dead_after_ms"].get<std::int64_t>());
  else
    fmt::print("heartbeats:  off (node state from `lockferry health set-down/set-up` only)\n");
  fmt::print("adoption:    {}{}\n",
             h["automatic"].get<bool>() ? "automatic" : "manual (lockferry migrate)",
             h["adopt_order"].empty()
                 ? std::string()
                 : ", order " +
                       fmt::format("{}", fmt::join(h["adopt_order"].get<std::vector<std::string>>(),
                                                   ", ")));
  fmt::print("\n{:<16} {:<8} {:<8} {:>6} {:>10} {}\n", "PEER", "STATE", "SERVING", "EPOCH",
             "HEARD (ms)", "WHY");
  for (const auto& p : h["peers"]) {
    auto ago = p["last_heard_ms_ago"].get<std::int64_t>();
    fmt::print("{:<16} {:<8} {:<8} {:>6} {:>10} {}\n", p["node"].get<std::string>(),
               p["state"].get<std::string>(),
               p["serving"].get<bool>() ? (p["fenced"].get<bool>() ? "fenced" : "yes") : "no",
               p["epoch"].get<std::uint64_t>(),
               ago < 0 ? std::string("never") : std::to_string(ago),
               p["reason"].get<std::string>());
  }
  const json& c = h["counters"];
  fmt::print("\nheartbeats:   {}\n", counters::row(counters::kHeartbeats, c));
  fmt::print("dropped:      {}\n", counters::row(counters::kHeartbeatsDropped, c));
  fmt::print("checks:       {}\n", counters::row(counters::kHealthChecks, c));
  for (const auto& a : h["adoptions"]) {
    fmt::print("adoption of {}: {} ({} ms from detection; {} records, epoch {}): {}\n",
               a["from_node"].get<std::string>(),
               a["running"].get<bool>() ? "RUNNING" : (a["ok"].get<bool>() ? "ok" : "FAILED"),
               a["duration_ms"].get<std::int64_t>(), a["records"].get<std::size_t>(),
               a["epoch"].get<std::uint64_t>(), a["message"].get<std::string>());
  }
}

std::string range_text(std::uint64_t start, std::uint64_t end) {
  return end == UINT64_MAX ? fmt::format("{}-EOF", start) : fmt::format("{}-{}", start, end);
}

void print_audit(const json& a) {
  fmt::print(
      "reclaim audit {} -> {} ({}): {} locks held on {}: {} reclaimed ({:.1f} %), {} with a "
      "different range, {} NOT reclaimed\n",
      a["from_node"].get<std::string>(), a["to_node"].get<std::string>(),
      a["at"].get<std::string>(), a["locks_held_before"].get<std::size_t>(),
      a["from_node"].get<std::string>(), a["reclaimed"].get<std::size_t>(),
      a["percent_reclaimed"].get<double>(), a["different_range"].get<std::size_t>(),
      a["not_reclaimed"].get<std::size_t>());
  fmt::print("{:<16} {:<16} {:<16} {:<40} {:<16} {:<6} {}\n", "STATUS", "CLIENT", "VIA", "PATH",
             "RANGE", "TYPE", "NOW");
  for (const auto& l : a["locks"]) {
    std::string now = l.contains("now") ? range_text(l["now"]["start"].get<std::uint64_t>(),
                                                     l["now"]["end"].get<std::uint64_t>()) +
                                              " " + l["now"]["type"].get<std::string>()
                                        : "-";
    const std::string via = l.value("server_addr", std::string());
    fmt::print("{:<16} {:<16} {:<16} {:<40} {:<16} {:<6} {}\n", l["status"].get<std::string>(),
               l["client"].get<std::string>().empty() ? "?" : l["client"].get<std::string>(),
               via.empty() ? "?" : via, l["path"].get<std::string>(),
               range_text(l["start"].get<std::uint64_t>(), l["end"].get<std::uint64_t>()),
               l["type"].get<std::string>(), now);
  }
  for (const auto& [client, c] : a["clients"].items()) {
    fmt::print("client {}: {} locks, {} reclaimed, {} different range, {} not reclaimed\n", client,
               c["locks"].get<std::size_t>(), c["reclaimed"].get<std::size_t>(),
               c["different_range"].get<std::size_t>(), c["not_reclaimed"].get<std::size_t>());
  }
  if (a.contains("client_report")) print_client_report(a["client_report"]);
  if (!a["unmatched"].empty())
    fmt::print("{} lock(s) held on {} did not come from {}\n", a["unmatched"].size(),
               a["to_node"].get<std::string>(), a["from_node"].get<std::string>());
}

int cmd_audit(const Globals& g, const std::string& from, std::string node) {
  json report;
  if (!g.store_url.empty()) {
    auto store = open(g);
    if (!store) return fail(store.error().message, g);
    const auto config = defaults(g);
    if (node.empty()) node = config.node;
    auto options = daemon::migrate_defaults(config);
    if (!options) return fail(options.error().message, g);
    auto r = failover::failover_audit_from_store(**store, from, node,
                                                 failover::sm_notify_state_dir(*options));
    if (!r) return fail(r.error().message, g);
    report = control::to_json(*r);
  } else {
    if (!node.empty())
      return fail("audit --node needs --store (lockferryd audits its own node)", g);
    auto answer = ask_daemon(g, {{"command", "audit"}, {"from", from}}, std::chrono::seconds(30));
    if (!answer) return fail(answer.error().message, g);
    report = *answer;
  }
  if (g.json_output)
    std::cout << report.dump(2) << "\n";
  else
    print_audit(displayable(report));
  return 0;
}

int cmd_health(const Globals& g, const std::string& action, const std::string& node,
               const std::string& reason) {
  json request{{"command", "health"}, {"action", action}};
  if (!node.empty()) request["node"] = node;
  if (!reason.empty()) request["reason"] = reason;
  auto answer = ask_daemon(g, request, std::chrono::seconds(10));
  if (!answer) return fail(answer.error().message, g);
  if (g.json_output)
    std::cout << answer->dump(2) << "\n";
  else
    print_health(displayable(*answer));
  return 0;
}

int cmd_store_migrate_data(const Globals& g, const std::string& from_url,
                           const std::string& to_url) {
  if (from_url == to_url) return fail("store migrate-data: --from and --to name the same store", g);
  auto from = store::open_store(from_url);
  if (!from) return fail("--from: " + from.error().message, g);
  auto to = store::open_store(to_url);
  if (!to) return fail("--to: " + to.error().message, g);
  auto copied = store::copy_store(**from, **to);
  if (!copied) return fail(copied.error().message, g);
  const store::CopyReport& r = *copied;
  if (g.json_output) {
    std::cout << json{{"ok", true},
                      {"from", (*from)->url()},
                      {"to", (*to)->url()},
                      {"nodes", r.nodes},
                      {"monitor_files", r.monitor_files},
                      {"monitor_records", r.monitor_records},
                      {"lock_records", r.lock_records},
                      {"epoch_bumps", r.epoch_bumps},
                      {"migrations", r.migrations},
                      {"unchanged", r.unchanged},
                      {"verified", r.verified}}
                     .dump(2)
              << "\n";
    return 0;
  }
  fmt::print("copied {} -> {}\n", text::display_safe((*from)->url()),
             text::display_safe((*to)->url()));
  fmt::print("  nodes:            {}\n", r.nodes);
  fmt::print("  monitor records:  {} ({} statd files)\n", r.monitor_records, r.monitor_files);
  fmt::print("  lock records:     {}\n", r.lock_records);
  fmt::print("  epoch bumps:      {}\n", r.epoch_bumps);
  fmt::print("  migrations:       {}\n", r.migrations);
  fmt::print("  already there:    {}\n", r.unchanged);
  fmt::print("verified: both stores hold the same records, lock tables, epochs and migrations\n");
  return 0;
}

// The subcommands and their arguments, as CLI11 fills them in.
struct Commands {
  CLI::App* status = nullptr;
  CLI::App* records = nullptr;
  std::string records_node;
  CLI::App* locks = nullptr;
  std::string locks_node;
  CLI::App* nodes = nullptr;
  CLI::App* migrations = nullptr;
  CLI::App* version = nullptr;
  CLI::App* migrate_data = nullptr;
  std::string data_from, data_to;
  CLI::App* audit = nullptr;
  std::string audit_from, audit_node;
  CLI::App* health = nullptr;
  CLI::App* set_down = nullptr;
  CLI::App* set_up = nullptr;
  std::string health_node, health_reason;
  CLI::App* migrate = nullptr;
  control::MigrateRequest migrate_request;
};

void add_global_options(CLI::App& app, Globals& g) {
  app.add_option("-c,--config", g.config_path, "lockferryd config to take defaults from")
      ->capture_default_str();
  app.add_option(
      "--socket", g.socket,
      "lockferryd control socket (default from the config: /run/lockferry/lockferryd.sock)");
  app.add_option("--store", g.store_url,
                 "work on this store directly instead of asking lockferryd");
  app.add_flag("--json", g.json_output, "machine-readable output");
  app.add_flag("-v,--verbose", g.verbose, "debug logging");
  app.set_version_flag("--version", std::string("lockferry ") + LOCKFERRY_VERSION);
}

// status, records, locks, nodes, migrations, version: what lockferryd or the store holds.
void add_read_commands(CLI::App& app, Commands& c) {
  c.status =
      app.add_subcommand("status", "capture mode, counters, store and fencing state of lockferryd");
  c.records = app.add_subcommand("records", "monitor records captured for a node");
  c.records->add_option("--node", c.records_node,
                        "node whose records to show (default: this node)");
  c.locks = app.add_subcommand(
      "locks", "byte-range locks the lock managers (lockd, ganesha.nfsd) hold on a node");
  c.locks->add_option("--node", c.locks_node, "node whose locks to show (default: this node)");
  c.nodes = app.add_subcommand(
      "nodes", "nodes in the store, their fencing epochs and record counts (needs --store)");
  c.migrations = app.add_subcommand(
      "migrations", "past and running migrations recorded in the store (needs --store)");
  c.version = app.add_subcommand("version", "print the version");
}

void add_store_commands(CLI::App& app, Commands& c) {
  auto* store_group = app.add_subcommand("store", "work on whole stores (see docs/stores.md)");
  store_group->require_subcommand(1);
  c.migrate_data = store_group->add_subcommand(
      "migrate-data",
      "copy every monitor record, lock table, fencing epoch and migration from one store to\n"
      "another (e.g. dir:// to postgresql://), then read both back and compare. Stop lockferryd\n"
      "on every node first; running it again after an interruption finishes the copy.");
  c.migrate_data->add_option("--from", c.data_from, "URL of the store to copy from")->required();
  c.migrate_data
      ->add_option("--to", c.data_to,
                   "URL of the store to copy into: empty, or an earlier copy of --from")
      ->required();
}

void add_audit_and_health(CLI::App& app, Commands& c) {
  c.audit = app.add_subcommand(
      "audit",
      "reclaim audit of an adoption: the locks NODE held (its lock table, frozen when it was\n"
      "fenced) against the locks this node's lock manager holds now - per lock reclaimed,\n"
      "reclaimed with a different range, or not reclaimed. Run it during or after the grace "
      "period.");
  c.audit->add_option("--from", c.audit_from, "the adopted node (the old primary)")->required();
  c.audit->add_option("--node", c.audit_node,
                      "the adoptive node (with --store; default: this node)");
  c.health = app.add_subcommand(
      "health",
      "this node's health view: peers (alive, dead, left, down), heartbeat counters, adoptions.\n"
      "`health set-down NODE` tells lockferryd that NODE is down (adopt it, when automatic\n"
      "adoption is on and this node is its adopter) - or, for this node itself, that its NFS\n"
      "service is down (it leaves: tells its peers, stops heartbeating); `health set-up NODE`\n"
      "undoes it. That is how an external health monitor or cluster manager drives lockferryd.");
  c.health->require_subcommand(0, 1);
  c.health->add_subcommand("status", "show the health view (the default)");
  c.set_down = c.health->add_subcommand("set-down", "declare NODE down (this node: leave)");
  c.set_up = c.health->add_subcommand("set-up", "clear a set-down of NODE");
  c.set_down->add_option("node", c.health_node, "node name")->required();
  c.set_down->add_option("--reason", c.health_reason, "why (logged)");
  c.set_up->add_option("node", c.health_node, "node name")->required();
}

void add_migrate(CLI::App& app, Commands& c) {
  c.migrate = app.add_subcommand(
      "migrate",
      "adopt another node's monitor records: fence it, replay its records into this server's\n"
      "statd directory, and make this server recognise them so clients reclaim their locks.\n"
      "Run it on the adoptive node after the service IP moved here and the NFS server is up\n"
      "(in grace) on it.");
  control::MigrateRequest& r = c.migrate_request;
  auto* m = c.migrate;
  m->add_option("--from", r.from, "node to adopt (the failed primary)")->required();
  m->add_option("--node", r.node,
                "this node's name (default: from the config, else the host name)");
  m->add_option("--statmon-dir", r.statmon_dir,
                "statd monitor directory to replay into (default /var/lib/nfs/sm)");
  m->add_option("--service-ip", r.service_ip,
                "service IP clients mounted from; SM_NOTIFY is sent from it. Given here, only\n"
                "the clients that locked through it are replayed (kernel lockd records which\n"
                "server address each lock came through): a client whose recorded locks all came\n"
                "through other addresses is left out; one with a monitor record but no lock of\n"
                "known address (no lock recorded, NFS-Ganesha, locks found only by a reconcile)\n"
                "is replayed, since an extra SM_NOTIFY is ignored and a missing one loses locks.\n"
                "Without it, [failover] service_ip is the address SM_NOTIFY is sent from and\n"
                "every client is replayed");
  m->add_option("--recognize", r.recognize,
                "how this server recognises the records: notify (the built-in SM_NOTIFY sender; "
                "default), sm-notify, restart-statd, restart-nfs, ganesha-grace, command, none");
  m->add_option("--sm-notify-state-dir", r.state_dir,
                "statd state directory (sm.bak/, state) for the built-in notifier and sm-notify -P "
                "(default: parent of --statmon-dir)");
  m->add_option("--command", r.command,
                "the command for --recognize command (or to override a method's); {service_ip} and "
                "{state_dir} are replaced")
      ->expected(1, -1);
  m->add_option("--timeout", r.timeout_s,
                "seconds each recognition command may run; the built-in notifier's deadline")
      ->capture_default_str();
  m->add_option("--retry-minutes", r.retry_minutes,
                "sm-notify -m: how long to retry unreachable clients")
      ->capture_default_str();
  m->add_flag("--dry-run", r.dry_run, "show what would be written and run; change nothing");
  m->add_flag("--force", r.force,
              "adopt even if another node already adopted --from at its current epoch, or "
              "if the store knows nothing of --from (no records, no history)");
}

// Logs go to stderr so that --json output on stdout stays parseable.
void set_up_logging(const Globals& g) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("lockferry"));
  log::set_pattern("%^%l%$: %v");
  spdlog::set_level(g.verbose ? spdlog::level::debug : spdlog::level::warn);
}

int cmd_version(const Globals& g) {
  if (g.json_output)
    std::cout << json{{"version", LOCKFERRY_VERSION}}.dump() << "\n";
  else
    fmt::print("lockferry {}\n", LOCKFERRY_VERSION);
  return 0;
}

// Runs the one subcommand given.
int run(const Globals& g, const Commands& c) {
  if (*c.status) return cmd_status(g);
  if (*c.records) return cmd_records(g, c.records_node);
  if (*c.locks) return cmd_locks(g, c.locks_node);
  if (*c.nodes) return cmd_nodes(g);
  if (*c.migrations) return cmd_migrations(g);
  if (*c.audit) return cmd_audit(g, c.audit_from, c.audit_node);
  if (*c.health) {
    const std::string action = *c.set_down ? "set-down" : *c.set_up ? "set-up" : "status";
    return cmd_health(g, action, c.health_node, c.health_reason);
  }
  if (*c.migrate_data) return cmd_store_migrate_data(g, c.data_from, c.data_to);
  if (*c.version) return cmd_version(g);
  if (*c.migrate) {
    if (!g.verbose) spdlog::set_level(spdlog::level::info);  // migrate narrates what it does
    return cmd_migrate(g, control::to_json(c.migrate_request));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "lockferry - inspect and drive lockferryd, the NFSv3 lock failover keeper.\n\n"
      "Without --store, commands ask the local lockferryd over its control socket (root only).\n"
      "With --store URL (e.g. dir:///shared/lockferry), they read or write the store directly:\n"
      "that is how cluster scripts (Pacemaker, keepalived) run a migration offline.",
      "lockferry"};
  app.require_subcommand(1);
  // Global options may also follow the subcommand (`lockferry records --store URL --json`).
  app.fallthrough();
  Globals g;
  Commands c;
  add_global_options(app, g);
  add_read_commands(app, c);
  add_store_commands(app, c);
  add_audit_and_health(app, c);
  add_migrate(app, c);
  CLI11_PARSE(app, argc, argv);
  set_up_logging(g);
  return run(g, c);
}
