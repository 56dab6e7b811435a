// SPDX-License-Identifier: Apache-2.0
// OwnerHasher: SipHash-2-4 keyed per boot; see lock_owner.h.
#include "capture/lock_owner.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace lockferry::capture {

namespace {

std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

std::uint64_t load_le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

OwnerHasher::Key random_key() {
  OwnerHasher::Key key{};
  std::size_t got = 0;
  while (got < key.size()) {
    const ssize_t n = ::getrandom(key.data() + got, key.size() - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
    // EINTR only: getrandom without GRND_NONBLOCK blocks until the pool is ready, never fails.
  }
  return key;
}

std::string hex(const OwnerHasher::Key& key) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (auto b : key) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

bool unhex(const std::string& text, OwnerHasher::Key& key) {
  if (text.size() != key.size() * 2) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    unsigned v = 0;
    for (char c : text.substr(i * 2, 2)) {
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<unsigned>(c - 'a' + 10);
      else
        return false;
    }
    key[i] = static_cast<std::uint8_t>(v);
  }
  return true;
}

}  // namespace

std::uint64_t siphash24(const OwnerHasher::Key& key, const void* data, std::size_t len) {
  const auto* in = static_cast<const std::uint8_t*>(data);
  const std::uint64_t k0 = load_le64(key.data()), k1 = load_le64(key.data() + 8);
  std::uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  std::uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  auto round = [&] {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  };
  const std::size_t full = len & ~std::size_t{7};
  for (std::size_t i = 0; i < full; i += 8) {
    const std::uint64_t m = load_le64(in + i);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  std::uint64_t b = static_cast<std::uint64_t>(len) << 56;
  for (std::size_t i = 0; i < (len & 7); ++i)
    b |= static_cast<std::uint64_t>(in[full + i]) << (8 * i);
  v3 ^= b;
  round();
  round();
  v0 ^= b;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

OwnerHasher OwnerHasher::random() { return OwnerHasher(random_key()); }

Result<OwnerHasher> OwnerHasher::for_boot(const std::string& path,
                                          const std::string& boot_id_path) {
  std::string boot_id;
  {
    std::ifstream in(boot_id_path);
    if (!in || !std::getline(in, boot_id) || boot_id.empty())
      return make_error("cannot read the boot id from {}", boot_id_path);
  }
  // File: "<boot id> <32 hex digits>\n". Another boot's key is replaced, never reused.
  {
    std::ifstream in(path);
    std::string file_boot, file_key;
    Key key{};
    if (in && (in >> file_boot >> file_key) && file_boot == boot_id && unhex(file_key, key))
      return OwnerHasher(key);
  }
  const Key key = random_key();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::string tmp = path + ".XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    return make_errno_error(errno,
                            "cannot create the lock owner key file {} (set another path "
                            "or make its directory writable)",
                            tmp);
  const std::string line = boot_id + " " + hex(key) + "\n";
  const bool written = ::fchmod(fd, 0600) == 0 &&
                       ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                       ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!written) {
    ::unlink(tmp.c_str());
    return make_errno_error(saved, "cannot write the lock owner key file {}", tmp);
  }
  // link() keeps a key another daemon wrote meanwhile (then that one is used); another boot's
  // key is replaced.
  if (::link(tmp.c_str(), path.c_str()) == 0) {
    ::unlink(tmp.c_str());
    return OwnerHasher(key);
  }
  const int link_err = errno;
  if (link_err == EEXIST) {
    std::ifstream in(path);
    std::string file_boot, file_key;
    Key theirs{};
    if (in && (in >> file_boot >> file_key) && file_boot == boot_id && unhex(file_key, theirs)) {
      ::unlink(tmp.c_str());
      return OwnerHasher(theirs);
    }
    if (::rename(tmp.c_str(), path.c_str()) == 0) return OwnerHasher(key);
  }
  const int err = link_err == EEXIST ? errno : link_err;
  ::unlink(tmp.c_str());
  return make_errno_error(err, "cannot install the lock owner key file {}", path);
}

std::uint64_t OwnerHasher::operator()(std::uint64_t kernel_owner) const {
  if (kernel_owner == 0) return 0;
  const std::uint64_t h = siphash24(key_, &kernel_owner, sizeof kernel_owner);
  return h == 0 ? 1 : h;
}

}  // namespace lockferry::capture
