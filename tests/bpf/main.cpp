// SPDX-License-Identifier: Apache-2.0
// main() of lockferry_bpf_tests: decides once whether root and BPF are available, says why not
// in one clear line, then runs the tests (which skip, or fail under LOCKFERRY_REQUIRE_BPF=1).
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
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

}  // namespace lockferry::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (const char* level = std::getenv("LOCKFERRY_LOG_LEVEL"))
    spdlog::set_level(spdlog::level::from_str(level));
  else
    spdlog::set_level(spdlog::level::warn);

  if (::geteuid() != 0) {
    lockferry::test::g_reason = "not root: the BPF tests load programs and need root";
  } else if (auto r = lockferry::capture::probe_bpf(); !r) {
    lockferry::test::g_reason = "BPF unavailable: " + r.error().message;
  }
  if (!lockferry::test::g_reason.empty()) {
    std::cerr << "lockferry_bpf_tests: " << lockferry::test::g_reason
              << (lockferry::test::bpf_required() ? " (LOCKFERRY_REQUIRE_BPF=1: tests will FAIL)"
                                                  : " (tests will be skipped)")
              << "\n";
  }
  return RUN_ALL_TESTS();
}
