// SPDX-License-Identifier: Apache-2.0
// lockferry's logging: a message holding a hostile file name is one escaped line, and warnings
// that repeat per record are rate-limited with a count of what was left out.
#include "common/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>
#include <vector>

namespace lockferry::log {
namespace {

using namespace std::chrono_literals;

// A default logger writing into a string, with the daemon's pattern set through log::.
class LogToString {
 public:
  LogToString() {
    old_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>(
        "log-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
    spdlog::set_default_logger(logger);
    set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  }
  ~LogToString() {
    spdlog::set_default_logger(old_);
    spdlog::set_pattern("%+");
  }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> old_;
};

TEST(SafeLog, AFileNameCannotForgeALogLineOrDriveTheTerminal) {
  LogToString log;
  const std::string name =
      "evil\n2026-12-04T20:00:00.000 critical node nodeB adopted\x1b]0;title\x07\x1b[2J";
  spdlog::info("monitor record {} removed (statd stopped monitoring it)", name);
  const std::string text = log.text();
  // One line: the only newline is the one that ends it.
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.find('\n'), text.size() - 1) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
  EXPECT_NE(text.find("evil\\x0a2026-12-04T20:00:00.000 critical node nodeB adopted\\x1b]0;title"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(" info monitor record evil"), std::string::npos) << text;
}

TEST(SafeLog, APercentSignInThePatternStaysLiteral) {
  LogToString log;
  set_pattern("%% %v %%");
  spdlog::warn("100% done\x1b");
  EXPECT_EQ(log.text(), "% 100% done\\x1b %\n");
}

// A clock the test moves by hand, and the reports the limiter makes.
struct Fixture {
  std::chrono::steady_clock::time_point now{};
  std::vector<std::pair<std::string, std::uint64_t>> reports;
  RateLimiter limiter{3, 10s,
                      [this](std::string_view key, std::uint64_t n, std::chrono::milliseconds) {
                        reports.emplace_back(std::string(key), n);
                      },
                      [this] { return now; }};
};

TEST(RateLimiter, TheFirstFewPassThenTheRestAreCountedAndReportedOnce) {
  Fixture f;
  int passed = 0;
  for (int i = 0; i < 1000; ++i) passed += f.limiter.allow("capture: bad record") ? 1 : 0;
  EXPECT_EQ(passed, 3);
  EXPECT_EQ(f.limiter.suppressed(), 997u);
  EXPECT_TRUE(f.reports.empty());  // reported when the interval ends, not per message
  f.now += 10s;
  EXPECT_TRUE(f.limiter.allow("capture: bad record"));
  ASSERT_EQ(f.reports.size(), 1u);
  EXPECT_EQ(f.reports[0], (std::pair<std::string, std::uint64_t>{"capture: bad record", 997}));
}

TEST(RateLimiter, KeysHaveTheirOwnWindows) {
  Fixture f;
  for (int i = 0; i < 10; ++i) f.limiter.allow("a");
  EXPECT_TRUE(f.limiter.allow("b"));
  f.now += 5s;
  EXPECT_FALSE(f.limiter.allow("a"));  // still a's first interval
  f.now += 6s;
  // Another key's call reports a's ended interval: a burst that stopped is not forgotten.
  EXPECT_TRUE(f.limiter.allow("b"));
  ASSERT_EQ(f.reports.size(), 1u);
  EXPECT_EQ(f.reports[0].first, "a");
  EXPECT_EQ(f.reports[0].second, 8u);
  EXPECT_TRUE(f.limiter.allow("a"));
  EXPECT_EQ(f.reports.size(), 1u);
}

TEST(RateLimiter, FlushReportsWhatWasLeftOut) {
  Fixture f;
  for (int i = 0; i < 5; ++i) f.limiter.allow("x");
  f.limiter.flush();
  EXPECT_TRUE(f.reports.empty());  // the interval has not ended
  f.now += 11s;
  f.limiter.flush();
  ASSERT_EQ(f.reports.size(), 1u);
  EXPECT_EQ(f.reports[0].second, 2u);
  f.limiter.flush();
  EXPECT_EQ(f.reports.size(), 1u);
}

TEST(RateLimiter, ManyKeysShareOneWindowPastTheLimit) {
  Fixture f;
  for (std::size_t i = 0; i < RateLimiter::kMaxKeys + 100; ++i)
    f.limiter.allow("key " + std::to_string(i));
  // The first kMaxKeys keys each passed; the 100 beyond share one window of 3.
  EXPECT_EQ(f.limiter.suppressed(), 97u);
}

TEST(RateLimiter, WarnLimitedLogsTheSuppressedCount) {
  LogToString log;
  const std::string key = "log test: repeated " + std::to_string(::getpid());
  for (int i = 0; i < 100; ++i) warn_limited(key, "record {} is bad", i);
  const std::string text = log.text();
  EXPECT_NE(text.find("record 19 is bad"), std::string::npos);
  EXPECT_EQ(text.find("record 20 is bad"), std::string::npos);
  repeated().flush();  // nothing yet: the 10 s interval has not ended
  EXPECT_EQ(log.text().find("suppressed"), std::string::npos);
}

}  // namespace
}  // namespace lockferry::log
