// SPDX-License-Identifier: Apache-2.0
// Lock owners leave the kernel as raw struct pointers (files_struct, struct file, nlm_lockowner);
// OwnerHasher turns them into keyed SipHash-2-4 values (libsodium's crypto_shorthash) before
// anything stores them, so the store never holds a kernel address, while one owner still hashes
// alike for the whole boot.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "lockferry/result.h"

namespace lockferry::owner_hash {

class OwnerHasher {
 public:
  using Key = std::array<std::uint8_t, 16>;
  explicit OwnerHasher(const Key& key) : key_(key) {}

  // A fresh random key (owners hash differently after a restart: stored tables keep stale owners
  // until the reconcile replaces them).
  static OwnerHasher random();

  // The key kept in `path` for this boot: created (16 random bytes, mode 0600, next to this
  // boot's /proc/sys/kernel/random/boot_id) when missing or written in another boot, so that a
  // restarted daemon hashes the owners of its stored table alike. `boot_id_path` is for tests.
  static Result<OwnerHasher> for_boot(
      const std::string& path, const std::string& boot_id_path = "/proc/sys/kernel/random/boot_id");

  // Never 0 (0 means "no owner" to readers of the store).
  std::uint64_t operator()(std::uint64_t kernel_owner) const;

 private:
  Key key_;
};

// SipHash-2-4 of `len` bytes as the reference implementation's 64-bit value (libsodium's 8 output
// bytes read little-endian), which is what stored owner ids hold; exposed for its test vectors.
std::uint64_t siphash24(const OwnerHasher::Key& key, const void* data, std::size_t len);

}  // namespace lockferry::owner_hash
