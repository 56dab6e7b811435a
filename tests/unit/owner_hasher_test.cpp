// SPDX-License-Identifier: Apache-2.0
// Lock owners are stored as a keyed hash, never as the kernel address: SipHash-2-4 against the
// reference vectors, and the per-boot key file (same key within a boot, a new one after reboot).
#include "owner_hash/owner_hasher.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace lockferry::owner_hash {
namespace {

OwnerHasher::Key reference_key() {
  OwnerHasher::Key key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  return key;
}

TEST(OwnerHash, SipHash24MatchesTheReferenceVectors) {
  // From the SipHash paper's vectors.h: key 00..0f, message 00..(n-1).
  std::uint8_t msg[16];
  for (std::size_t i = 0; i < sizeof msg; ++i) msg[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(siphash24(reference_key(), msg, 0), 0x726fdb47dd0e0e31ULL);
  EXPECT_EQ(siphash24(reference_key(), msg, 8), 0x93f5f5799a932462ULL);
  EXPECT_EQ(siphash24(reference_key(), msg, 15), 0xa129ca6149be45e5ULL);
}

// Stored lock tables keep owner ids across a daemon upgrade (same key file, same boot): the hash
// of an owner must be the value the hand-written SipHash-2-4 gave before libsodium computed it.
// The owner is hashed as its 8 bytes in memory; with the reference key, owner 0x0706050403020100
// is the vectors' 8-byte message, so its id is their 8-byte value.
TEST(OwnerHash, StoredOwnerIdsAreTheReferenceSipHash) {
  const OwnerHasher h(reference_key());
  EXPECT_EQ(h(0x0706050403020100ULL), 0x93f5f5799a932462ULL);
  // Measured with the hand-written implementation (commit e5b35c7) for a kernel-like address.
  EXPECT_EQ(h(0xffff888112345600ULL), 0x5aadd4390b678f7aULL);
}

TEST(OwnerHash, HidesTheAddressButKeepsEquality) {
  const OwnerHasher h(reference_key());
  const std::uint64_t files = 0xffff888112345600ULL, other = 0xffff888112345640ULL;
  EXPECT_EQ(h(files), h(files));
  EXPECT_NE(h(files), h(other));
  EXPECT_NE(h(files), files);
  EXPECT_EQ(h(0), 0u);
  // Another key, another value: the store alone does not tell the address.
  EXPECT_NE(OwnerHasher::random()(files), h(files));
}

class OwnerKeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/lockferry-ownerkey-XXXXXX";
    dir_ = ::mkdtemp(tmpl.data());
    boot_ = dir_ + "/boot_id";
    set_boot("5d1c9a4e-1111-4222-8333-944455556666");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void set_boot(const std::string& id) { std::ofstream(boot_) << id << "\n"; }

  std::string dir_, boot_;
};

TEST_F(OwnerKeyFile, OneKeyPerBoot) {
  const std::string path = dir_ + "/run/lock-owner-key";
  auto first = OwnerHasher::for_boot(path, boot_);
  ASSERT_TRUE(first) << first.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A restarted daemon in the same boot hashes alike: its stored owners still match.
  auto again = OwnerHasher::for_boot(path, boot_);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ((*first)(0xffff888100000040ULL), (*again)(0xffff888100000040ULL));
  // After a reboot the old key is not reused.
  set_boot("0f0e0d0c-aaaa-4bbb-8ccc-ddddeeeeffff");
  auto rebooted = OwnerHasher::for_boot(path, boot_);
  ASSERT_TRUE(rebooted) << rebooted.error().message;
  EXPECT_NE((*first)(0xffff888100000040ULL), (*rebooted)(0xffff888100000040ULL));
}

TEST_F(OwnerKeyFile, ErrorsNameTheFile) {
  auto no_boot = OwnerHasher::for_boot(dir_ + "/k", dir_ + "/missing_boot_id");
  ASSERT_FALSE(no_boot);
  EXPECT_NE(no_boot.error().message.find("missing_boot_id"), std::string::npos);
  // Not even root creates files in /proc.
  auto unwritable = OwnerHasher::for_boot("/proc/lockferry-key", boot_);
  ASSERT_FALSE(unwritable);
  EXPECT_NE(unwritable.error().message.find("lockferry-key"), std::string::npos);
}

}  // namespace
}  // namespace lockferry::owner_hash
