// SPDX-License-Identifier: Apache-2.0
// lf-nlm-client: behaves like an NFSv3 client's lock manager towards one server (NLM4 locks,
// SM_NOTIFY, reclaim in grace) so e2e tests can check that locks survive a failover.
// The command line is a contract with scripts/cluster/; see tests/tools/README.md.
#include <netdb.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <limits>
#include <optional>
#include <thread>

#include "nlm_client/client_state.h"
#include "nlm_client/nlm_session.h"
#include "nlm_client/nsm_listener.h"

namespace lockferry::tools {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitNotGranted = 1;
constexpr int kExitError = 2;

volatile std::sig_atomic_t g_stop = 0;
void on_stop_signal(int /*sig*/) { g_stop = 1; }

struct Options {
  std::string server;
  std::string export_path;
  std::string name;
  std::string state_file;
  std::string owner;
  std::optional<std::uint32_t> svid;
  std::int32_t nsm_state = 1;
  bool listen_notify = false;
  bool accept_any_notify = false;
  bool reclaim = false;
  bool no_create = false;
  bool block = false;
  int reclaim_window_s = 60;
  std::optional<int> hold_s;
  bool hold_forever = false;
  int timeout_ms = 5000;
  bool verbose = false;
  std::vector<std::string> specs;
};

void emit(const nlohmann::json& j) {
  std::cout << j.dump() << std::endl;  // one line per event, flushed so pipes see it at once
}

// FILE:START:LEN[:exclusive|shared], parsed from the right so FILE may contain ':'.
Result<LockRange> parse_range(const std::string& spec, bool allow_mode) {
  std::vector<std::string> parts;
  std::string rest = spec;
  LockRange r;
  auto take_last = [&rest]() -> std::optional<std::string> {
    const auto pos = rest.rfind(':');
    if (pos == std::string::npos) return std::nullopt;
    std::string tail = rest.substr(pos + 1);
    rest.resize(pos);
    return tail;
  };
  auto last = take_last();
  if (!last) return make_error("range '{}': expected FILE:START:LEN[:exclusive|shared]", spec);
  if (*last == "exclusive" || *last == "shared") {
    if (!allow_mode) return make_error("range '{}': unlock takes FILE:START:LEN", spec);
    r.exclusive = *last == "exclusive";
    last = take_last();
    if (!last) return make_error("range '{}': expected FILE:START:LEN[:exclusive|shared]", spec);
  }
  auto start = take_last();
  if (!start || rest.empty()) {
    return make_error("range '{}': expected FILE:START:LEN[:exclusive|shared]", spec);
  }
  try {
    std::size_t used = 0;
    r.start = std::stoull(*start, &used);
    if (used != start->size()) throw std::invalid_argument("trailing characters");
    r.len = std::stoull(*last, &used);
    if (used != last->size()) throw std::invalid_argument("trailing characters");
  } catch (const std::exception& e) {
    return make_error("range '{}': START and LEN must be decimal numbers ({})", spec, e.what());
  }
  r.file = rest;
  return r;
}

// Numeric addresses `host` resolves to (itself when it is one); empty when it does not resolve.
std::vector<std::string> addresses_of(const std::string& host) {
  std::vector<std::string> out;
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return out;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char text[NI_MAXHOST] = {};
    if (getnameinfo(a->ai_addr, a->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) ==
        0) {
      out.emplace_back(text);
    }
  }
  freeaddrinfo(res);
  return out;
}

// A real client's statd only passes on SM_NOTIFY for a host it monitors, matching the
// mon_name by name or by address; a notification naming another host must not make us reclaim.
// sm-notify canonicalises its -v argument, so the mon_name is often a name even when the
// client mounted by IP.
bool names_server(const std::string& mon_name, const std::string& server) {
  if (mon_name == server) return true;
  const auto theirs = addresses_of(mon_name);
  const auto ours = addresses_of(server);
  for (const auto& a : theirs) {
    for (const auto& b : ours) {
      if (a == b) return true;
    }
  }
  return false;
}

class Client {
 public:
  explicit Client(Options o) : o_(std::move(o)) {
    st_.name = o_.name;
    st_.server = o_.server;
    st_.export_path = o_.export_path;
    st_.pid = static_cast<int>(getpid());
    st_.owner.caller_name = o_.name;
    st_.owner.svid = o_.svid.value_or(static_cast<std::uint32_t>(getpid()));
    st_.owner.oh = o_.owner.empty() ? fmt::format("{}@{}", getpid(), o_.name) : o_.owner;
    st_.owner.nsm_state = o_.nsm_state;
  }

  int run_lock() {
    std::vector<LockRange> ranges;
    for (const auto& spec : o_.specs) {
      auto r = parse_range(spec, true);
      if (!r) return usage_error(r.error());
      r->block = o_.block;
      ranges.push_back(*r);
    }
    auto session = open_session();
    if (!session) return transport_error(session.error());
    bool all_granted = true;
    for (const auto& range : ranges) {
      auto fh = (*session)->resolve(range.file, !o_.no_create);
      if (!fh) return transport_error(fh.error());
      auto status = (*session)->lock(*fh, range, o_.reclaim);
      if (!status) return transport_error(status.error());
      const std::string name = nlm_status_name(*status);
      auto j = range_json(range);
      j["event"] = "lock";
      j["status"] = name;
      j["reclaim"] = o_.reclaim;
      j["owner"] = st_.owner.oh;
      j["svid"] = st_.owner.svid;
      emit(j);
      spdlog::info("NLM4_LOCK {} [{}, +{}] {}{}: {}", range.file, range.start, range.len,
                   range.exclusive ? "exclusive" : "shared", o_.reclaim ? " reclaim" : "", name);
      if (*status == kNlmGranted) {
        st_.locks.push_back(HeldLock{range, "held", name, {}});
      } else {
        all_granted = false;
      }
    }
    if (!all_granted) return kExitNotGranted;
    if (!o_.hold_forever && !o_.hold_s) return kExitOk;
    return hold();
  }

  int run_test() {
    auto session = open_session();
    if (!session) return transport_error(session.error());
    bool all_granted = true;
    for (const auto& spec : o_.specs) {
      auto range = parse_range(spec, true);
      if (!range) return usage_error(range.error());
      auto fh = (*session)->resolve(range->file, false);
      if (!fh) return transport_error(fh.error());
      auto out = (*session)->test(*fh, *range);
      if (!out) return transport_error(out.error());
      auto j = range_json(*range);
      j["event"] = "test";
      j["status"] = nlm_status_name(out->status);
      if (out->holder) {
        j["holder"] = {{"exclusive", out->holder->exclusive},
                       {"svid", out->holder->svid},
                       {"owner", out->holder->oh},
                       {"start", out->holder->start},
                       {"len", out->holder->len}};
      }
      emit(j);
      if (out->status != kNlmGranted) all_granted = false;
    }
    return all_granted ? kExitOk : kExitNotGranted;
  }

  int run_unlock() {
    auto session = open_session();
    if (!session) return transport_error(session.error());
    bool all_granted = true;
    for (const auto& spec : o_.specs) {
      auto range = parse_range(spec, false);
      if (!range) return usage_error(range.error());
      auto fh = (*session)->resolve(range->file, false);
      if (!fh) return transport_error(fh.error());
      auto status = (*session)->unlock(*fh, *range);
      if (!status) return transport_error(status.error());
      auto j = range_json(*range);
      j.erase("exclusive");
      j["event"] = "unlock";
      j["status"] = nlm_status_name(*status);
      j["owner"] = st_.owner.oh;
      j["svid"] = st_.owner.svid;
      emit(j);
      if (*status != kNlmGranted) all_granted = false;
    }
    return all_granted ? kExitOk : kExitNotGranted;
  }

 private:
  Result<std::unique_ptr<NlmSession>> open_session() {
    return NlmSession::open(o_.server, o_.export_path, st_.owner,
                            std::chrono::milliseconds(o_.timeout_ms));
  }

  int usage_error(const Error& e) {
    spdlog::error("{}", e.message);
    return kExitError;
  }

  int transport_error(const Error& e) {
    spdlog::error("{}", e.message);
    emit({{"event", "error"}, {"message", e.message}});
    return kExitError;
  }

  void save_state() {
    if (o_.state_file.empty()) return;
    if (auto r = write_state_file(o_.state_file, st_); !r) {
      spdlog::error("cannot write state file {}: {}", o_.state_file, r.error().message);
    }
  }

  // Waits up to `d`, answering SM_NOTIFY meanwhile; notifications go to pending_.
  void wait(std::chrono::milliseconds d) {
    if (listener_) {
      for (auto& n : listener_->serve(d)) pending_.push_back(std::move(n));
    } else {
      std::this_thread::sleep_for(d);
    }
  }

  int hold() {
    if (o_.listen_notify) {
      auto l = NsmListener::start();
      if (!l) return transport_error(l.error());
      listener_ = std::move(*l);
    }
    save_state();
    emit({{"event", "holding"},
          {"locks", st_.locks.size()},
          {"owner", st_.owner.oh},
          {"svid", st_.owner.svid},
          {"nsm_udp_port", listener_ ? listener_->udp_port() : 0},
          {"nsm_tcp_port", listener_ ? listener_->tcp_port() : 0}});
    const auto until = o_.hold_forever ? std::chrono::steady_clock::time_point::max()
                                       : std::chrono::steady_clock::now() +
                                             std::chrono::seconds(o_.hold_s.value_or(0));
    while (g_stop == 0 && std::chrono::steady_clock::now() < until) {
      wait(std::chrono::milliseconds(200));
      while (!pending_.empty() && g_stop == 0) {
        Notification n = std::move(pending_.front());
        pending_.erase(pending_.begin());
        handle_notification(n);
      }
    }
    // Releasing nothing on purpose: a killed client never unlocks, and the server must cope.
    spdlog::info("stopping; {} lock(s) stay on the server", st_.locks.size());
    emit({{"event", "exit"}, {"reason", g_stop != 0 ? "signal" : "hold expired"}});
    return kExitOk;
  }

  void handle_notification(const Notification& n) {
    const bool matched = o_.accept_any_notify || names_server(n.mon_name, o_.server);
    st_.notifications.push_back(n);
    save_state();
    auto j = notification_json(n);
    j["event"] = "notify";
    j["matched"] = matched;
    emit(j);
    if (!matched) {
      spdlog::warn(
          "SM_NOTIFY names {}, not our server {}: ignored, as a real client's statd "
          "would (sm-notify -v must name the service IP)",
          n.mon_name, o_.server);
      return;
    }
    reclaim_all();
  }

  // Reclaims every lock still held, as a client's lockd does after SM_NOTIFY. Only transport
  // failures are retried (server not up yet on the service IP, or restarting): any NLM answer
  // is final. Handles are looked up again because the server may be another machine now.
  void reclaim_all() {
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < st_.locks.size(); ++i) {
      if (st_.locks[i].status != "lost") todo.push_back(i);
    }
    spdlog::info("reclaiming {} lock(s) on {} for up to {} s", todo.size(), o_.server,
                 o_.reclaim_window_s);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(o_.reclaim_window_s);
    int attempts = 0;
    std::string last_error;
    while (!todo.empty() && g_stop == 0) {
      ++attempts;
      std::vector<std::size_t> still;
      auto session = open_session();
      if (!session) {
        last_error = session.error().message;
        still = todo;
      } else {
        for (std::size_t k = 0; k < todo.size(); ++k) {
          HeldLock& held = st_.locks[todo[k]];
          auto fh = (*session)->resolve(held.range.file, false);
          Result<int> status =
              fh ? (*session)->lock(*fh, held.range, true) : Result<int>(fh.error());
          if (!status) {
            // The connection may be gone; retry this and the rest with a new session.
            last_error = status.error().message;
            still.insert(still.end(), todo.begin() + static_cast<std::ptrdiff_t>(k), todo.end());
            break;
          }
          held.nlm_status = nlm_status_name(*status);
          held.status = *status == kNlmGranted ? "reclaimed" : "lost";
          held.error.clear();
          auto j = range_json(held.range);
          j["event"] = "reclaim";
          j["status"] = held.nlm_status;
          j["attempts"] = attempts;
          emit(j);
          spdlog::info("reclaim {} [{}, +{}]: {}", held.range.file, held.range.start,
                       held.range.len, held.nlm_status);
          save_state();
        }
      }
      todo = std::move(still);
      if (todo.empty()) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        for (std::size_t i : todo) {
          HeldLock& held = st_.locks[i];
          held.status = "lost";
          held.error = "reclaim window expired: " + last_error;
          auto j = range_json(held.range);
          j["event"] = "reclaim";
          j["status"] = "error";
          j["error"] = held.error;
          j["attempts"] = attempts;
          emit(j);
        }
        spdlog::error("reclaim window of {} s expired: {}", o_.reclaim_window_s, last_error);
        todo.clear();
        save_state();
        break;
      }
      spdlog::warn("reclaim attempt {} failed, retrying: {}", attempts, last_error);
      wait(std::chrono::milliseconds(1000));
    }
    ++st_.reclaims_completed;
    save_state();
    int reclaimed = 0;
    int lost = 0;
    for (const auto& l : st_.locks) (l.status == "lost" ? lost : reclaimed) += 1;
    emit({{"event", "reclaim_done"},
          {"reclaimed", reclaimed},
          {"lost", lost},
          {"attempts", attempts}});
  }

  Options o_;
  ClientState st_;
  std::unique_ptr<NsmListener> listener_;
  std::vector<Notification> pending_;
};

}  // namespace
}  // namespace lockferry::tools

int main(int argc, char** argv) {
  using lockferry::tools::Options;
  Options o;
  CLI::App app{"lf-nlm-client: an NFSv3 client lock manager (NLM4 + SM_NOTIFY) for tests"};
  app.add_option("--server", o.server, "NFS server address (the service IP)")->required();
  app.add_option("--export", o.export_path, "exported path to MOUNT")->required();
  app.add_option("--name", o.name, "NLM caller_name (use the client's IP address)")->required();
  app.add_option("--state", o.state_file, "JSON state file, rewritten atomically on every change");
  app.add_flag(
      "--listen-notify", o.listen_notify,
      "while holding, register NSM (100024/1) with the local rpcbind and reclaim on SM_NOTIFY");
  app.add_flag("--accept-any-notify", o.accept_any_notify,
               "reclaim even when SM_NOTIFY's mon_name does not name --server");
  app.add_option("--reclaim-window", o.reclaim_window_s,
                 "seconds to keep retrying reclaims while the server is unreachable")
      ->default_val(60);
  auto* hold = app.add_option("--hold", o.hold_s, "keep the locks for SECONDS, then exit");
  app.add_flag("--hold-forever", o.hold_forever, "keep the locks until SIGTERM/SIGINT")
      ->excludes(hold);
  app.add_flag("--reclaim", o.reclaim, "send the initial NLM4_LOCKs with reclaim=true");
  app.add_flag("--no-create", o.no_create, "lock: fail instead of creating a missing file");
  app.add_flag("--block", o.block,
               "lock: a blocking request (a conflict answers \"blocked\"; the server grants it "
               "later, its GRANTED callback goes unanswered)");
  app.add_option("--owner", o.owner, "NLM owner handle (oh); default <pid>@<name>");
  app.add_option("--svid", o.svid, "NLM svid; default the pid");
  app.add_option("--nsm-state", o.nsm_state, "NSM state number sent in NLM4_LOCK")->default_val(1);
  app.add_option("--timeout-ms", o.timeout_ms, "per-RPC timeout")->default_val(5000);
  app.add_flag("-v,--verbose", o.verbose, "debug logging");
  app.require_subcommand(1);
  auto* lock = app.add_subcommand("lock", "NLM4_LOCK each FILE:START:LEN[:exclusive|shared]");
  auto* test = app.add_subcommand("test", "NLM4_TEST each FILE:START:LEN[:exclusive|shared]");
  auto* unlock = app.add_subcommand("unlock", "NLM4_UNLOCK each FILE:START:LEN");
  for (auto* sub : {lock, test, unlock}) {
    sub->fallthrough();  // global options may also follow the subcommand
    sub->add_option("ranges", o.specs, "FILE:START:LEN[:exclusive|shared]")->required();
  }
  auto* reboot = app.add_subcommand(
      "reboot",
      "SM_NOTIFY the server's statd as --name with --nsm-state (use a new odd number): "
      "this client rebooted, the server drops its locks");
  reboot->fallthrough();
  CLI11_PARSE(app, argc, argv);

  auto logger = spdlog::stderr_logger_mt("lf-nlm-client");
  logger->set_pattern("%H:%M:%S.%e lf-nlm-client[%P] %l: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(o.verbose ? spdlog::level::debug : spdlog::level::info);

  struct sigaction sa {};
  sa.sa_handler = lockferry::tools::on_stop_signal;  // no SA_RESTART: select() must wake up
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (reboot->parsed()) {
    auto sent = lockferry::tools::send_reboot_notify(o.server, o.name, o.nsm_state,
                                                     std::chrono::milliseconds(o.timeout_ms));
    if (!sent) spdlog::error("{}", sent.error().message);
    return sent ? 0 : 2;
  }
  lockferry::tools::Client client(o);
  if (lock->parsed()) return client.run_lock();
  if (test->parsed()) return client.run_test();
  return client.run_unlock();
}
