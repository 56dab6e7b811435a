// SPDX-License-Identifier: Apache-2.0
// [capture] ring_buffer_kb: the BPF event ring buffer size, shrunk by the fault tests to force
// overflow; only sizes the kernel accepts get through.
#include <gtest/gtest.h>

#include "config/config.h"

namespace lockferry::daemon {
namespace {

Result<Config> with_ring(const std::string& value) {
  return parse_config("node = \"nodeA\"\n[capture]\nring_buffer_kb = " + value + "\n", "test.toml");
}

TEST(RingBufferConfig, DefaultsToOneMebibyte) {
  auto cfg = parse_config("node = \"nodeA\"\n", "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->ring_buffer_kb, 1024u);
}

TEST(RingBufferConfig, TakesPowersOfTwoFromTheMinimumUp) {
  for (std::uint32_t kb : {4u, 8u, 4096u, capture::kMaxRingBufferKb}) {
    auto cfg = with_ring(std::to_string(kb));
    ASSERT_TRUE(cfg.ok()) << kb << ": " << cfg.error().message;
    EXPECT_EQ(cfg->ring_buffer_kb, kb);
  }
}

TEST(RingBufferConfig, RefusesSizesTheKernelWouldNotTakeNamingTheKey) {
  for (const char* bad : {"0", "2", "-4", "5", "1000", "524288", "\"big\""}) {
    auto cfg = with_ring(bad);
    ASSERT_FALSE(cfg.ok()) << bad;
    EXPECT_NE(cfg.error().message.find("ring_buffer_kb"), std::string::npos) << cfg.error().message;
  }
}

}  // namespace
}  // namespace lockferry::daemon
