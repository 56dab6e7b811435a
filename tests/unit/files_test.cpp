// SPDX-License-Identifier: Apache-2.0
// files::write_file_atomically, create_file_exclusively, read_file_bounded and ensure_directory
// on real files, including symlinks, FIFOs and racing processes.
#include "common/files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "dir_store_test_util.h"

namespace lockferry::files {
namespace {

using lockferry::testing::dir_names;
using lockferry::testing::read_raw_file;
using lockferry::testing::run_in_processes;
using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;
using ::testing::HasSubstr;

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

TEST(WriteFileAtomically, ReplacesTheContentWithTheExactModeAndLeavesNoTempFile) {
  TempDir dir;
  mode_t old_umask = ::umask(077);  // the mode asked for must win over the umask
  ASSERT_TRUE(write_file_atomically(dir.path(), "client", "first\n", 0644).ok());
  ::umask(old_umask);
  EXPECT_EQ(read_raw_file(dir / "client"), "first\n");
  EXPECT_EQ(mode_of(dir / "client") & 07777, 0644u);

  ASSERT_TRUE(write_file_atomically(dir.path(), "client", "second\n", 0600).ok());
  EXPECT_EQ(read_raw_file(dir / "client"), "second\n");
  EXPECT_EQ(mode_of(dir / "client") & 07777, 0600u);
  EXPECT_EQ(dir_names(dir.path()), std::vector<std::string>{"client"});
}

TEST(WriteFileAtomically, WritesAnEmptyFile) {
  TempDir dir;
  ASSERT_TRUE(write_file_atomically(dir.path(), "empty", "").ok());
  EXPECT_EQ(read_raw_file(dir / "empty"), "");
}

TEST(WriteFileAtomically, ChangesTheOwnerWhenAsked) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown to another user";
  TempDir dir;
  ASSERT_TRUE(write_file_atomically(dir.path(), "client", "x\n", 0644, Owner{65534, 65534}).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir / "client").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
}

TEST(WriteFileAtomically, RefusesNamesThatAreNotASingleComponent) {
  TempDir dir;
  for (std::string name : {"", ".", "..", "../escape", "a/b", "/etc/passwd"}) {
    auto ok = write_file_atomically(dir.path(), name, "x");
    EXPECT_FALSE(ok.ok()) << name;
  }
  EXPECT_FALSE(write_file_atomically(dir.path(), std::string("a\0b", 3), "x").ok());
  EXPECT_TRUE(dir_names(dir.path()).empty());
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(dir.path()).parent_path() / "escape"));
}

TEST(WriteFileAtomically, ReplacesASymlinkInsteadOfWritingThroughIt) {
  TempDir dir;
  write_raw_file(dir / "victim", "untouched");
  ASSERT_EQ(::symlink((dir / "victim").c_str(), (dir / "client").c_str()), 0);
  ASSERT_TRUE(write_file_atomically(dir.path(), "client", "record\n").ok());
  EXPECT_TRUE(S_ISREG(mode_of(dir / "client")));
  EXPECT_EQ(read_raw_file(dir / "client"), "record\n");
  EXPECT_EQ(read_raw_file(dir / "victim"), "untouched");
}

TEST(WriteFileAtomically, NamesTheDirectoryAndErrnoWhenItIsMissing) {
  TempDir dir;
  auto ok = write_file_atomically(dir / "nope", "client", "x");
  ASSERT_FALSE(ok.ok());
  EXPECT_EQ(ok.error().code, ENOENT);
  EXPECT_THAT(ok.error().message, HasSubstr(dir / "nope"));
  EXPECT_THAT(ok.error().message, HasSubstr("ENOENT"));
}

TEST(WriteFileAtomically, ConcurrentWritersEachLandAWholeFile) {
  TempDir dir;
  const std::string a(64 * 1024, 'a'), b(64 * 1024, 'b');
  auto codes = run_in_processes(6, [&](int i) {
    for (int k = 0; k < 30; ++k) {
      if (!write_file_atomically(dir.path(), "shared", i % 2 ? a : b).ok()) return 1;
    }
    return 0;
  });
  EXPECT_EQ(codes, std::vector<int>(6, 0));
  const std::string got = read_raw_file(dir / "shared");
  EXPECT_TRUE(got == a || got == b) << "mixed or partial content of " << got.size() << " bytes";
  EXPECT_EQ(dir_names(dir.path()), std::vector<std::string>{"shared"});
}

TEST(CreateFileExclusively, ExactlyOneOfManyRacingProcessesWins) {
  TempDir dir;
  for (int round = 0; round < 10; ++round) {
    const std::string name = "epoch" + std::to_string(round);
    auto codes = run_in_processes(8, [&](int i) {
      auto created = create_file_exclusively(dir.path(), name, "winner " + std::to_string(i));
      if (!created.ok()) return 2;
      return *created ? 0 : 1;
    });
    int winners = 0;
    for (std::size_t i = 0; i < codes.size(); ++i) {
      ASSERT_NE(codes[i], 2) << "process " << i << " failed";
      if (codes[i] == 0) {
        ++winners;
        EXPECT_EQ(read_raw_file(dir / name), "winner " + std::to_string(i));
      }
    }
    EXPECT_EQ(winners, 1) << "round " << round;
  }
  for (const auto& name : dir_names(dir.path()))
    EXPECT_FALSE(is_atomic_write_temp_name(name)) << name;
}

TEST(ReadFileBounded, ReadsARegularFileUpToTheLimit) {
  TempDir dir;
  write_raw_file(dir / "f", std::string(100, 'x'));
  auto text = read_file_bounded(dir / "f", 100);
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(text->size(), 100u);

  auto big = read_file_bounded(dir / "f", 99);
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.error().message, HasSubstr("larger than the 99 bytes"));
}

TEST(ReadFileBounded, RefusesSymlinksFifosAndDirectories) {
  TempDir dir;
  write_raw_file(dir / "target", "secret");
  ASSERT_EQ(::symlink((dir / "target").c_str(), (dir / "link").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  ASSERT_EQ(::mkdir((dir / "sub").c_str(), 0700), 0);

  auto link = read_file_bounded(dir / "link", 4096);
  ASSERT_FALSE(link.ok());
  EXPECT_THAT(link.error().message, HasSubstr("symbolic link"));
  auto fifo = read_file_bounded(dir / "fifo", 4096);  // must not block waiting for a writer
  ASSERT_FALSE(fifo.ok());
  EXPECT_THAT(fifo.error().message, HasSubstr("not a regular file"));
  EXPECT_FALSE(read_file_bounded(dir / "sub", 4096).ok());
  auto missing = read_file_bounded(dir / "missing", 4096);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ENOENT);
}

TEST(EnsureDirectory, CreatesMissingParentsAndRefusesAFileInTheWay) {
  TempDir dir;
  ASSERT_TRUE(ensure_directory(dir / "a/b/c", 0750).ok());
  EXPECT_TRUE(S_ISDIR(mode_of(dir / "a/b/c")));
  EXPECT_TRUE(ensure_directory(dir / "a/b/c").ok());  // idempotent
  write_raw_file(dir / "file", "x");
  auto ok = ensure_directory(dir / "file");
  ASSERT_FALSE(ok.ok());
  EXPECT_THAT(ok.error().message, HasSubstr("exists but is not a directory"));
  ok = ensure_directory(dir / "file/sub");
  ASSERT_FALSE(ok.ok());
  EXPECT_THAT(ok.error().message, HasSubstr("ENOTDIR"));
}

TEST(TempFileNames, AreRecognisedAndStartWithADotSoStatdSkipsThem) {
  EXPECT_TRUE(is_atomic_write_temp_name(".client.lockferry-tmp.123.0011223344556677"));
  EXPECT_FALSE(is_atomic_write_temp_name("client"));
  EXPECT_FALSE(is_atomic_write_temp_name(".client.new"));
}

}  // namespace
}  // namespace lockferry::files
