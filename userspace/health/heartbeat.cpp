// SPDX-License-Identifier: Apache-2.0
// Heartbeat wire format, authentication and replay guard; see heartbeat.h.
#include "health/heartbeat.h"

#include <pwd.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/files.h"

namespace lockferry::health {
namespace {

constexpr std::uint8_t kMagic[4] = {'L', 'F', 'H', 'B'};
constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kHeader = 40;
constexpr std::size_t kTag = crypto_auth_hmacsha256_BYTES;
static_assert(kTag == 32);
constexpr std::uint8_t kFlagServing = 1;
constexpr std::uint8_t kFlagFenced = 2;

void put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v & 0xff);
}

// "name (uid N)", or "uid N" for a uid without a passwd entry.
std::string user_name(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr)
    return fmt::format("{} (uid {})", found->pw_name, uid);
  return fmt::format("uid {}", uid);
}

std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

void mac(const Key& key, const std::uint8_t* data, std::size_t size, std::uint8_t* out) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.bytes().data()),
                              key.bytes().size());
  crypto_auth_hmacsha256_update(&state, data, size);
  crypto_auth_hmacsha256_final(&state, out);
  sodium_memzero(&state, sizeof state);
}

// Node names travel as raw bytes; only names the store could hold are accepted (no '/', no
// whitespace or control characters), so a name is always safe to log and to look up.
bool valid_node_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNodeName || name == "." || name == "..") return false;
  for (unsigned char c : name) {
    if (c <= ' ' || c >= 0x7f || c == '/') return false;
  }
  return true;
}

Error reject(Rejection why, std::string message) {
  return Error{std::move(message), static_cast<int>(why)};
}

}  // namespace

const char* to_string(MessageType type) {
  switch (type) {
    case MessageType::heartbeat:
      return "heartbeat";
    case MessageType::leaving:
      return "leaving";
    case MessageType::stopping:
      return "stopping";
  }
  return "?";
}

const char* to_string(Rejection rejection) {
  switch (rejection) {
    case Rejection::malformed:
      return "malformed";
    case Rejection::forged:
      return "forged";
    case Rejection::replayed:
      return "replayed";
    case Rejection::stale:
      return "stale";
  }
  return "?";
}

Result<Key> Key::from_bytes(std::string_view bytes) {
  // Idempotent and thread-safe; picks libsodium's implementations once per process.
  if (sodium_init() < 0) return make_error("libsodium could not be initialised");
  if (bytes.size() < kMinBytes)
    return make_error(
        "heartbeat key has {} bytes; use at least {} random bytes "
        "(head -c 32 /dev/urandom | base64 > KEYFILE)",
        bytes.size(), kMinBytes);
  return Key(std::string(bytes));
}

Result<Key> Key::load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return make_errno_error(errno, "cannot read heartbeat key file {}", path);
  if ((st.st_mode & 077) != 0)
    return make_error(
        "heartbeat key file {} is readable by group or others (mode {:o}): anyone "
        "who can read it can forge heartbeats; chmod 600 it",
        path, st.st_mode & 07777);
  // Whoever owns the file can rewrite it whatever its mode, and so forge heartbeats that make
  // the cluster adopt a healthy node: only root (or the user lockferryd runs as) may own it.
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return make_error(
        "heartbeat key file {} is owned by {}, not root: that user can replace the key and "
        "forge heartbeats; chown root it",
        path, user_name(st.st_uid));
  auto content = files::read_file_bounded(path, 4096);
  if (!content)
    return make_error("cannot read heartbeat key file {}: {}", path, content.error().message);
  std::string bytes = std::move(*content);
  if (!bytes.empty() && bytes.back() == '\n') bytes.pop_back();
  auto key = from_bytes(bytes);
  sodium_memzero(bytes.data(), bytes.size());
  if (!key) return make_error("{}: {}", path, key.error().message);
  return key;
}

std::vector<std::uint8_t> encode(const Heartbeat& m, const Key& key) {
  const std::size_t n = std::min(m.node.size(), kMaxNodeName);
  std::vector<std::uint8_t> out(kHeader + n + kTag);
  std::memcpy(out.data(), kMagic, 4);
  out[4] = kVersion;
  out[5] = static_cast<std::uint8_t>(m.type);
  out[6] = static_cast<std::uint8_t>((m.serving ? kFlagServing : 0) | (m.fenced ? kFlagFenced : 0));
  out[7] = static_cast<std::uint8_t>(n);
  put64(&out[8], m.incarnation);
  put64(&out[16], m.seq);
  put64(&out[24], static_cast<std::uint64_t>(m.sent_ms));
  put64(&out[32], m.epoch);
  std::memcpy(&out[kHeader], m.node.data(), n);
  mac(key, out.data(), kHeader + n, &out[kHeader + n]);
  return out;
}

Result<Claim> peek(std::span<const std::uint8_t> d) {
  if (d.size() < kHeader + 1 + kTag || d.size() > kMaxMessage)
    return reject(Rejection::malformed, fmt::format("{} bytes is not a heartbeat size", d.size()));
  if (std::memcmp(d.data(), kMagic, 4) != 0)
    return reject(Rejection::malformed, "not a lockferry heartbeat (bad magic)");
  if (d[4] != kVersion)
    return reject(Rejection::malformed,
                  fmt::format("heartbeat version {} (this lockferryd speaks {})", d[4], kVersion));
  const std::size_t n = d[7];
  if (d.size() != kHeader + n + kTag)
    return reject(Rejection::malformed,
                  fmt::format("length {} does not match node name length {}", d.size(), n));
  return Claim{std::string_view(reinterpret_cast<const char*>(&d[kHeader]), n), get64(&d[8]),
               get64(&d[16]), static_cast<std::int64_t>(get64(&d[24]))};
}

Result<Heartbeat> decode(std::span<const std::uint8_t> d, const Key& key) {
  if (auto claim = peek(d); !claim) return claim.error();
  const std::size_t n = d[7];
  std::uint8_t expected[kTag];
  mac(key, d.data(), kHeader + n, expected);
  if (crypto_verify_32(expected, d.data() + kHeader + n) != 0)
    return reject(Rejection::forged, "HMAC does not match (wrong key, or altered on the way)");

  Heartbeat m;
  if (d[5] < static_cast<std::uint8_t>(MessageType::heartbeat) ||
      d[5] > static_cast<std::uint8_t>(MessageType::stopping))
    return reject(Rejection::malformed, fmt::format("unknown message type {}", d[5]));
  m.type = static_cast<MessageType>(d[5]);
  if ((d[6] & ~(kFlagServing | kFlagFenced)) != 0)
    return reject(Rejection::malformed, fmt::format("unknown flags {:#x}", d[6]));
  m.serving = (d[6] & kFlagServing) != 0;
  m.fenced = (d[6] & kFlagFenced) != 0;
  m.incarnation = get64(&d[8]);
  m.seq = get64(&d[16]);
  m.sent_ms = static_cast<std::int64_t>(get64(&d[24]));
  m.epoch = get64(&d[32]);
  m.node.assign(reinterpret_cast<const char*>(&d[kHeader]), n);
  if (!valid_node_name(m.node)) return reject(Rejection::malformed, "invalid node name");
  return m;
}

Result<void> ReplayGuard::admit(const Heartbeat& m, std::int64_t now_ms) {
  const std::int64_t window = window_.count();
  if (m.sent_ms < now_ms - window || m.sent_ms > now_ms + window)
    return reject(Rejection::stale,
                  fmt::format("sent {} ms from our clock, outside the {} ms window (are the "
                              "nodes' clocks synchronised?)",
                              m.sent_ms - now_ms, window));
  auto it = seen_.find(m.node);
  if (it != seen_.end()) {
    const Seen& s = it->second;
    if (m.incarnation == s.incarnation && m.seq <= s.seq)
      return reject(Rejection::replayed,
                    fmt::format("sequence {} already seen (last {})", m.seq, s.seq));
    if (m.incarnation != s.incarnation && m.sent_ms <= s.newest_ms)
      return reject(
          Rejection::replayed,
          fmt::format("an older incarnation ({:#x}) than the one last seen", m.incarnation));
  }
  Seen& s = seen_[m.node];
  s.incarnation = m.incarnation;
  s.seq = m.seq;
  s.newest_ms = std::max(s.newest_ms, m.sent_ms);
  return {};
}

}  // namespace lockferry::health
