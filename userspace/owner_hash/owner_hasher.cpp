// SPDX-License-Identifier: Apache-2.0
// OwnerHasher: SipHash-2-4 keyed per boot; see owner_hasher.h.
#include "owner_hash/owner_hasher.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "common/text.h"

namespace lockferry::owner_hash {

namespace {

// crypto_shorthash_siphash24 is SipHash-2-4 with a 16-byte key and 8 output bytes, the
// little-endian encoding of the reference implementation's uint64 result.
static_assert(crypto_shorthash_siphash24_KEYBYTES == std::tuple_size_v<OwnerHasher::Key>);
static_assert(crypto_shorthash_siphash24_BYTES == sizeof(std::uint64_t));

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

// The key file's line for `boot_id`: "<boot id> <32 hex digits>" (trailing newline optional).
bool read_key_line(const std::string& path, const std::string& boot_id, OwnerHasher::Key& key) {
  std::ifstream in(path);
  std::string file_boot, file_key;
  return in && (in >> file_boot >> file_key) && file_boot == boot_id &&
         text::from_hex(file_key, key);
}

}  // namespace

std::uint64_t siphash24(const OwnerHasher::Key& key, const void* data, std::size_t len) {
  std::array<std::uint8_t, crypto_shorthash_siphash24_BYTES> out{};
  crypto_shorthash_siphash24(out.data(), static_cast<const unsigned char*>(data), len, key.data());
  return load_le64(out.data());
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
  if (Key key{}; read_key_line(path, boot_id, key)) return OwnerHasher(key);
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
  const std::string line = boot_id + " " + text::to_hex(key) + "\n";
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
    if (Key theirs{}; read_key_line(path, boot_id, theirs)) {
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

}  // namespace lockferry::owner_hash
