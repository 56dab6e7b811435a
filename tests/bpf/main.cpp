// SPDX-License-Identifier: Apache-2.0
// main() of lockferry_bpf_tests: decides once whether root and BPF are available, says why not
// in one clear line, then runs the tests (which skip, or fail under LOCKFERRY_REQUIRE_BPF=1).
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "bpf_env.h"
#include "capture/bpf_capture.h"

namespace lockferry::test {

namespace {
std::string g_reason;
}

const std::string& bpf_unavailable_reason() { return g_reason; }

bool bpf_required() {
  const char* v = std::getenv("LOCKFERRY_REQUIRE_BPF");
  return v != nullptr && std::string(v) == "1";
}

const std::string& hook_set_unavailable_reason(capture::Mode hooks) {
  static std::map<capture::Mode, std::string> reasons;
  if (auto it = reasons.find(hooks); it != reasons.end()) return it->second;
  std::string& reason = reasons[hooks];
  if (!g_reason.empty()) return reason = g_reason;
  // What lockferryd would do: start the capture of that hook set alone on a scratch directory.
  std::string dir = "/tmp/lockferry-hook-probe-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return reason = "cannot create a scratch directory";
  boost::asio::io_context io;
  capture::Options options;
  options.dirs = {dir};
  options.mode = hooks;
  options.pin_dir.clear();
  auto started = capture::Capture::start(io, options, nullptr, nullptr);
  if (started)
    (*started)->stop();
  else
    reason =
        std::string(capture::to_string(hooks)) + " hooks unavailable: " + started.error().message;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return reason;
}

bool hook_name_required(std::string_view name) {
  const char* v = std::getenv("LOCKFERRY_REQUIRE_HOOKS");
  std::stringstream list(v ? v : "");
  for (std::string listed; std::getline(list, listed, ',');)
    if (listed == name) return true;
  return false;
}

bool hook_set_required(capture::Mode hooks) {
  return hook_name_required(capture::to_string(hooks));
}

std::vector<capture::Mode> hook_sets_to_test(std::initializer_list<capture::Mode> sets) {
  std::vector<capture::Mode> out;
  for (auto hooks : sets) {
    const std::string& why = hook_set_unavailable_reason(hooks);
    if (why.empty() || !g_reason.empty() || hook_set_required(hooks)) {
      out.push_back(hooks);
      continue;
    }
    static std::set<capture::Mode> said;
    if (said.insert(hooks).second)
      std::cerr << "lockferry_bpf_tests: the tests of the " << capture::to_string(hooks)
                << " hook set are not run on this kernel (" << why
                << "); vm.bpf_tests runs them in the Debian 6.1 guest\n";
  }
  return out;
}

std::string hook_set_name(const ::testing::TestParamInfo<capture::Mode>& info) {
  return capture::to_string(info.param);
}

}  // namespace lockferry::test

int main(int argc, char** argv) {
  if (const char* level = std::getenv("LOCKFERRY_LOG_LEVEL"))
    spdlog::set_level(spdlog::level::from_str(level));
  else
    spdlog::set_level(spdlog::level::warn);

  if (::geteuid() != 0) {
    lockferry::test::g_reason = "not root: the BPF tests load programs and need root";
  } else if (auto r = lockferry::capture::probe_bpf(/*syscall_tracepoints=*/true); !r) {
    lockferry::test::g_reason = "BPF unavailable: " + r.error().message;
  }
  if (!lockferry::test::g_reason.empty()) {
    std::cerr << "lockferry_bpf_tests: " << lockferry::test::g_reason
              << (lockferry::test::bpf_required() ? " (LOCKFERRY_REQUIRE_BPF=1: tests will FAIL)"
                                                  : " (tests will be skipped)")
              << "\n";
  }
  // After the check above: registering the tests instantiates them per hook set, which probes.
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
