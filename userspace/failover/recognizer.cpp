// SPDX-License-Identifier: Apache-2.0
// Recognition of replayed records by the adoptive server; see recognizer.h.
#include "failover/recognizer.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "common/text.h"
#include "common/trusted_dirs.h"
#include "notify/notifier.h"

namespace lockferry::failover {

bool pending_in_sm_bak(int state_dir, const std::string& client) {
  files::Fd fd(files::open_beneath(state_dir, "sm.bak/" + client, O_PATH));
  return fd.get() >= 0 || errno == ELOOP;  // a link left under the client's name is pending too
}

namespace {

// The built-in notifier on the checked state directory; every replayed client gets a result.
void recognize_by_notifying(const RecognizeOptions& o, int state_dir, RecognizeReport& report) {
  notify::NotifyOptions n;
  n.state_dir_fd = state_dir;
  n.state_dir = o.state_dir;
  n.service_ip = o.service_ip;
  n.clients = o.clients;
  n.mon_names = o.mon_names;
  n.deadline = o.timeout;
  auto sent = notify::notify_clients(n);
  if (!sent) {
    report.message = fmt::format("built-in notify: {}", sent.error().message);
    spdlog::error("recognize: {}", report.message);
    return;
  }
  report.nsm_state = sent->state;
  for (const auto& c : sent->clients)
    (c.status == notify::ClientStatus::acknowledged ? report.notified : report.not_notified)
        .push_back(c.client);
  report.clients = std::move(sent->clients);
}

}  // namespace

const char* to_string(RecognizeMethod method) {
  switch (method) {
    case RecognizeMethod::sm_notify:
      return "sm-notify";
    case RecognizeMethod::notify:
      return "notify";
    case RecognizeMethod::restart_statd:
      return "restart-statd";
    case RecognizeMethod::restart_nfs:
      return "restart-nfs";
    case RecognizeMethod::ganesha_grace:
      return "ganesha-grace";
    case RecognizeMethod::command:
      return "command";
    case RecognizeMethod::none:
      return "none";
  }
  return "?";
}

Result<RecognizeMethod> recognize_method_from_string(std::string_view text) {
  for (auto m : {RecognizeMethod::sm_notify, RecognizeMethod::notify,
                 RecognizeMethod::restart_statd, RecognizeMethod::restart_nfs,
                 RecognizeMethod::ganesha_grace, RecognizeMethod::command, RecognizeMethod::none}) {
    if (text == to_string(m)) return m;
  }
  return make_error(
      "unknown recognize method '{}' (use sm-notify, notify, restart-statd, restart-nfs, "
      "ganesha-grace, command or none)",
      text);
}

std::vector<std::vector<std::string>> recognize_commands(const RecognizeOptions& o) {
  std::vector<std::vector<std::string>> cmds;
  if (!o.command.empty()) {
    cmds.push_back(o.command);
  } else {
    switch (o.method) {
      case RecognizeMethod::sm_notify:
        // -f: send even though sm-notify already ran since boot; -d: stay in the foreground so we
        // know when it is done; -m: bounded retries; -v: the service IP is both the source
        // address and the name clients match against their mounts.
        cmds.push_back({"sm-notify", "-f", "-d", "-m", std::to_string(o.sm_notify_retry_minutes),
                        "-P", "{state_dir}", "-v", "{service_ip}"});
        break;
      case RecognizeMethod::restart_statd:
        cmds.push_back({"systemctl", "restart", "rpc-statd"});
        cmds.push_back({"sm-notify", "-f", "-d", "-m", std::to_string(o.sm_notify_retry_minutes),
                        "-P", "{state_dir}", "-v", "{service_ip}"});
        break;
      case RecognizeMethod::restart_nfs:
        cmds.push_back({"systemctl", "restart", "nfs-server"});
        break;
      case RecognizeMethod::ganesha_grace:
        // Ganesha's admin interface: a grace period for the IP this node just took over.
        cmds.push_back({"dbus-send", "--system", "--print-reply", "--dest=org.ganesha.nfsd",
                        "/org/ganesha/nfsd/admin", "org.ganesha.nfsd.admin.grace",
                        "string:{service_ip}"});
        break;
      case RecognizeMethod::notify:  // built in: no command
      case RecognizeMethod::command:
      case RecognizeMethod::none:
        break;
    }
  }
  for (auto& cmd : cmds) {
    for (auto& arg : cmd) {
      text::substitute(arg, "{service_ip}", o.service_ip);
      text::substitute(arg, "{state_dir}", o.state_dir);
    }
  }
  return cmds;
}

RecognizeReport recognize(const RecognizeOptions& o) {
  RecognizeReport report;
  report.method = o.method;
  bool uses_ip = o.method == RecognizeMethod::sm_notify || o.method == RecognizeMethod::notify ||
                 o.method == RecognizeMethod::restart_statd ||
                 o.method == RecognizeMethod::ganesha_grace;
  if (uses_ip && o.service_ip.empty()) {
    report.message = fmt::format(
        "{} needs the service IP (--service-ip): clients only accept a "
        "notification from the address they mounted",
        to_string(o.method));
    return report;
  }
  if (o.method == RecognizeMethod::command && o.command.empty()) {
    report.message = "recognize method 'command' needs a command";
    return report;
  }
  // sm-notify starts as root in the state directory (-P) before it drops to the owner of sm/:
  // the directory must pass the same check as the one replay writes into (trusted_dirs.h), and
  // who was notified is read from the directory checked, not from its name again.
  const bool uses_state_dir = o.method == RecognizeMethod::sm_notify ||
                              o.method == RecognizeMethod::notify ||
                              o.method == RecognizeMethod::restart_statd;
  files::Fd state_dir;
  if (uses_state_dir && !o.dry_run) {
    auto opened = files::open_trusted_directory(o.state_dir, files::ParentOwners::or_its_owner);
    if (!opened) {
      report.message = fmt::format("statd state directory {} is not usable: {}", o.state_dir,
                                   opened.error().message);
      spdlog::error("recognize: {}", report.message);
      return report;
    }
    state_dir = std::move(*opened);
  }
  const bool built_in = o.method == RecognizeMethod::notify && o.command.empty();
  if (built_in && !o.dry_run) {
    recognize_by_notifying(o, state_dir.get(), report);
    if (!report.message.empty()) return report;
  }
  for (const auto& argv : recognize_commands(o)) {
    CommandRun run{argv, -1, false, ""};
    if (o.dry_run) {
      report.commands.push_back(std::move(run));
      continue;
    }
    spdlog::info("recognize: running {}", process::to_display(argv));
    auto result = process::run_command(argv, o.timeout);
    if (!result) {
      report.message = result.error().message;
      report.commands.push_back(std::move(run));
      return report;
    }
    run.exit_code = result->exit_code;
    run.timed_out = result->timed_out;
    run.output = result->output;
    report.commands.push_back(run);
    if (run.timed_out || run.exit_code != 0) {
      report.message =
          fmt::format("{} {} (output: {})", process::to_display(argv),
                      run.timed_out ? fmt::format("timed out after {} s", o.timeout.count())
                                    : fmt::format("exited with {}", run.exit_code),
                      run.output.empty() ? "none" : run.output);
      spdlog::error("recognize: {}", report.message);
      // sm-notify timing out still notified whoever answered; report them below.
      if (!(run.timed_out && o.method == RecognizeMethod::sm_notify)) return report;
    }
  }
  if (uses_state_dir && state_dir.get() >= 0 && !built_in) {
    // sm-notify moves each record to sm.bak/ and removes it there once the client answered.
    for (const auto& client : o.clients) {
      bool pending = pending_in_sm_bak(state_dir.get(), client);
      (pending ? report.not_notified : report.notified).push_back(client);
    }
  }
  report.ok = report.message.empty();
  if (o.dry_run)
    report.message = "dry run: nothing was run";
  else if (report.ok && !report.not_notified.empty())
    report.message =
        fmt::format("{} client(s) did not acknowledge SM_NOTIFY", report.not_notified.size());
  return report;
}

}  // namespace lockferry::failover
