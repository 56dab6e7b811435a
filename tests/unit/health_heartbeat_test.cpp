// SPDX-License-Identifier: Apache-2.0
// Heartbeat wire format: round trip, authentication (every altered byte and a wrong key are
// refused), malformed input, and the replay guard's sequence and time window.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir_store_test_util.h"
#include "health/heartbeat.h"

namespace lockferry::health {
namespace {

using ::testing::HasSubstr;

Key test_key(char fill = 'k') { return *Key::from_bytes(std::string(32, fill)); }

Heartbeat sample() {
  Heartbeat m;
  m.type = MessageType::heartbeat;
  m.node = "nodeA";
  m.incarnation = 0x1122334455667788ull;
  m.seq = 42;
  m.sent_ms = 1'790'000'000'123;
  m.epoch = 3;
  m.serving = true;
  m.fenced = false;
  return m;
}

Rejection rejection_of(const Result<Heartbeat>& r) {
  return static_cast<Rejection>(r.error().code);
}

TEST(Heartbeat, RoundTripsEveryField) {
  const Key key = test_key();
  for (auto type : {MessageType::heartbeat, MessageType::leaving, MessageType::stopping}) {
    Heartbeat m = sample();
    m.type = type;
    m.fenced = type == MessageType::leaving;
    m.serving = type != MessageType::stopping;
    auto bytes = encode(m, key);
    EXPECT_EQ(bytes.size(), 40 + m.node.size() + 32);
    auto decoded = decode(bytes, key);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(*decoded, m);
  }
}

TEST(Heartbeat, EveryAlteredByteIsRefusedAndNeverDecoded) {
  const Key key = test_key();
  const auto good = encode(sample(), key);
  for (std::size_t i = 0; i < good.size(); ++i) {
    auto bad = good;
    bad[i] ^= 0x01;
    auto decoded = decode(bad, key);
    ASSERT_FALSE(decoded.ok()) << "byte " << i << " flipped was accepted";
    // Magic, version and length are checked before the HMAC; everything else is forged.
    if (i >= 8) {
      EXPECT_EQ(rejection_of(decoded), Rejection::forged) << "byte " << i;
    }
  }
}

TEST(Heartbeat, AnotherKeyIsForged) {
  auto bytes = encode(sample(), test_key('a'));
  auto decoded = decode(bytes, test_key('b'));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(rejection_of(decoded), Rejection::forged);
  EXPECT_THAT(decoded.error().message, HasSubstr("HMAC"));
}

TEST(Heartbeat, MalformedDatagramsAreRefused) {
  const Key key = test_key();
  const auto good = encode(sample(), key);
  std::vector<std::vector<std::uint8_t>> bad{
      {},
      {'L', 'F', 'H', 'B'},
      std::vector<std::uint8_t>(good.begin(), good.end() - 1),  // truncated
      [&] {
        auto b = good;
        b.push_back(0);
        return b;
      }(),                                   // trailing byte
      std::vector<std::uint8_t>(600, 0xff),  // too large
      [&] {
        auto b = good;
        b[0] = 'X';
        return b;
      }(),  // magic
      [&] {
        auto b = good;
        b[4] = 2;
        return b;
      }(),  // version
      [&] {
        auto b = good;
        b[7] = 3;
        return b;
      }(),  // node length
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    auto decoded = decode(bad[i], key);
    ASSERT_FALSE(decoded.ok()) << "case " << i;
    EXPECT_EQ(rejection_of(decoded), Rejection::malformed)
        << "case " << i << ": " << decoded.error().message;
  }
}

TEST(Heartbeat, SignedButInvalidContentIsMalformed) {
  const Key key = test_key();
  Heartbeat m = sample();
  m.node = "bad/name";
  auto decoded = decode(encode(m, key), key);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(rejection_of(decoded), Rejection::malformed);
  m.node = "white space";
  EXPECT_FALSE(decode(encode(m, key), key).ok());
}

TEST(HeartbeatKey, ShortKeysAndReadableKeyFilesAreRefused) {
  EXPECT_FALSE(Key::from_bytes("too short").ok());
  testing::TempDir dir;
  const std::string path = dir / "key";
  testing::write_raw_file(path, std::string(40, 'x') + "\n");
  ::chmod(path.c_str(), 0644);
  auto loose = Key::load(path);
  ASSERT_FALSE(loose.ok());
  EXPECT_THAT(loose.error().message, HasSubstr("chmod 600"));
  ::chmod(path.c_str(), 0600);
  auto key = Key::load(path);
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->bytes(), std::string(40, 'x'));  // the trailing newline is not part of it
  EXPECT_FALSE(Key::load(dir / "missing").ok());
}

TEST(HeartbeatKey, KeyFilesNotOwnedByRootAreRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the key file another owner";
  testing::TempDir dir;
  const std::string path = dir / "key";
  testing::write_raw_file(path, std::string(40, 'x') + "\n");
  ::chmod(path.c_str(), 0600);
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  auto foreign = Key::load(path);
  ASSERT_FALSE(foreign.ok())
      << "a 0600 key file that uid 65534 owns (and may rewrite) was accepted";
  EXPECT_THAT(foreign.error().message, HasSubstr(path));
  EXPECT_THAT(foreign.error().message, HasSubstr("uid 65534"));
  EXPECT_THAT(foreign.error().message, HasSubstr("chown root"));
  ASSERT_EQ(::chown(path.c_str(), 0, 0), 0);
  EXPECT_TRUE(Key::load(path).ok());
}

TEST(ReplayGuard, AcceptsEachSequenceOnceAndInOrder) {
  ReplayGuard guard(std::chrono::milliseconds(5000));
  Heartbeat m = sample();
  const std::int64_t now = m.sent_ms;
  ASSERT_TRUE(guard.admit(m, now).ok());
  auto again = guard.admit(m, now);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(static_cast<Rejection>(again.error().code), Rejection::replayed);
  Heartbeat older = m;
  older.seq = 41;
  EXPECT_FALSE(guard.admit(older, now).ok());
  Heartbeat next = m;
  next.seq = 43;
  next.sent_ms += 500;
  EXPECT_TRUE(guard.admit(next, now + 500).ok());
  Heartbeat other_node = m;
  other_node.node = "nodeB";
  EXPECT_TRUE(guard.admit(other_node, now).ok());  // per node
}

TEST(ReplayGuard, RefusesMessagesOutsideTheTimeWindow) {
  ReplayGuard guard(std::chrono::milliseconds(5000));
  Heartbeat m = sample();
  auto old = guard.admit(m, m.sent_ms + 5001);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(static_cast<Rejection>(old.error().code), Rejection::stale);
  EXPECT_FALSE(guard.admit(m, m.sent_ms - 5001).ok());  // from the future
  EXPECT_TRUE(guard.admit(m, m.sent_ms + 5000).ok());
}

TEST(ReplayGuard, ARestartStartsANewSequenceButOldIncarnationsStayRefused) {
  ReplayGuard guard(std::chrono::milliseconds(5000));
  Heartbeat before = sample();
  before.seq = 1000;
  ASSERT_TRUE(guard.admit(before, before.sent_ms).ok());
  Heartbeat restarted = before;
  restarted.incarnation = 7;
  restarted.seq = 1;
  restarted.sent_ms += 800;
  EXPECT_TRUE(guard.admit(restarted, restarted.sent_ms).ok());
  // The old incarnation's next message, captured earlier and replayed now, is older.
  Heartbeat replayed = before;
  replayed.seq = 1001;
  replayed.sent_ms += 400;
  auto r = guard.admit(replayed, restarted.sent_ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(static_cast<Rejection>(r.error().code), Rejection::replayed);
}

}  // namespace
}  // namespace lockferry::health
