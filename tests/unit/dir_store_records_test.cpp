// SPDX-License-Identifier: Apache-2.0
// The dir:// store on real directories: records, hostile names, corrupt files, migrations,
// URLs, and a store that is read-only or full.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include "dir_store_test_util.h"
#include "statmon/record.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

using lockferry::testing::dir_names;
using lockferry::testing::LogCapture;
using lockferry::testing::make_record;
using lockferry::testing::open_at;
using lockferry::testing::read_raw_file;
using lockferry::testing::run_in_processes;
using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;
using ::testing::HasSubstr;

TEST(DirStore, StoresListsAndDeletesMonitorRecordsWithEveryField) {
  TempDir dir;
  auto store = open_at(dir / "store");
  ASSERT_TRUE(store);
  auto a = make_record("nfs1", "client-b.example");
  auto b = make_record("nfs1", "10.0.0.5");
  auto c = make_record("nfs2", "fd00::2");
  for (const auto* r : {&a, &b, &c}) ASSERT_TRUE(store->put_monitor(*r).ok());

  auto listed = store->list_monitor("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0], b);  // sorted by file name
  EXPECT_EQ((*listed)[1], a);
  EXPECT_TRUE(std::filesystem::exists(dir / "store/nfs1/monitor/10.0.0.5.json"));

  auto nodes = store->list_nodes();
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(*nodes, (std::vector<std::string>{"nfs1", "nfs2"}));

  ASSERT_TRUE(store->delete_monitor("nfs1", "10.0.0.5", 0).ok());
  listed = store->list_monitor("nfs1");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0], a);
}

TEST(DirStore, PutReplacesAndDeleteIsIdempotent) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  auto r = make_record("nfs1", "client");
  ASSERT_TRUE(store->put_monitor(r).ok());
  ASSERT_TRUE(store->put_monitor(r).ok());
  r.my_name = "server2";
  r.raw = statmon::format_record(r);
  r.last_seen_ns += 1;
  ASSERT_TRUE(store->put_monitor(r).ok());
  auto listed = store->list_monitor("nfs1");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0], r);

  ASSERT_TRUE(store->delete_monitor("nfs1", "client", 0).ok());
  EXPECT_TRUE(store->delete_monitor("nfs1", "client", 0).ok());
  EXPECT_TRUE(store->delete_monitor("never-seen", "client", 0).ok());
  EXPECT_TRUE(store->list_monitor("nfs1")->empty());
  EXPECT_TRUE(store->list_monitor("never-seen")->empty());
}

TEST(DirStore, FillsInTheRawLineAndRefusesOneThatDisagreesWithTheFields) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  auto r = make_record("nfs1", "client");
  r.raw.clear();
  ASSERT_TRUE(store->put_monitor(r).ok());
  EXPECT_EQ(store->list_monitor("nfs1")->at(0).raw, statmon::format_record(r));

  r.raw = "0100007f 000186b5 00000004 00000010 00000000000000000000000000000000 other x\n";
  auto ok = store->put_monitor(r);
  ASSERT_FALSE(ok.ok());
  EXPECT_THAT(ok.error().message, HasSubstr("does not match"));
}

TEST(DirStore, KeepsEveryLineOfAMonitorFileTogetherAndInOrder) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  auto first = make_record("nfs1", "10.0.1.5", 0, "server1");
  auto second = make_record("nfs1", "10.0.0.5", 0, "server1");
  first.file_name = second.file_name = "client.example.com";
  ASSERT_TRUE(store->put_monitor_file({first, second}).ok());
  auto listed = store->list_monitor("nfs1");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0], first);
  EXPECT_EQ((*listed)[1], second);
  EXPECT_EQ(statmon::format_record_file(*listed), first.raw + second.raw);

  auto other_node = second;
  other_node.node = "nfs2";
  EXPECT_FALSE(store->put_monitor_file({first, other_node}).ok());
  EXPECT_FALSE(store->put_monitor_file({}).ok());
}

TEST(DirStore, RefusesNodeAndFileNamesThatWouldEscapeTheStore) {
  TempDir dir;
  auto store = open_at(dir / "store");
  ASSERT_TRUE(store);
  const std::vector<std::string> hostile = {"",
                                            ".",
                                            "..",
                                            "../x",
                                            "../../etc",
                                            "/etc/passwd",
                                            "a/b",
                                            "a\nb",
                                            std::string("a\0b", 3),
                                            std::string(4096, 'n'),
                                            ".hidden",
                                            "caf\xe9"};
  for (const auto& name : hostile) {
    const std::string shown = statmon::printable(name);
    auto by_node = make_record("nfs1", "client");
    by_node.node = name;
    EXPECT_FALSE(store->put_monitor(by_node).ok()) << shown;
    EXPECT_FALSE(store->delete_monitor(name, "client", 0).ok()) << shown;
    EXPECT_FALSE(store->list_monitor(name).ok()) << shown;
    EXPECT_FALSE(store->epoch(name).ok()) << shown;
    EXPECT_FALSE(store->bump_epoch(name, 0, "nfs2").ok()) << shown;

    auto by_file = make_record("nfs1", "client");
    by_file.file_name = name;
    EXPECT_FALSE(store->put_monitor(by_file).ok()) << shown;
    EXPECT_FALSE(store->delete_monitor("nfs1", name, 0).ok()) << shown;

    MigrationRecord m;
    m.from_node = name;
    m.to_node = "nfs2";
    m.epoch = 1;
    EXPECT_FALSE(store->put_migration(m).ok()) << shown;
  }
  auto reserved = make_record("migrations", "client");
  auto ok = store->put_monitor(reserved);
  ASSERT_FALSE(ok.ok());
  EXPECT_THAT(ok.error().message, HasSubstr("reserved"));
  // Longer than NAME_MAX: no statd writes it.
  ok = store->put_monitor(make_record("nfs1", std::string(256, 'x')));
  ASSERT_FALSE(ok.ok());
  EXPECT_THAT(ok.error().message, HasSubstr("more than the 255 allowed"));

  EXPECT_EQ(dir_names(dir.path()), std::vector<std::string>{"store"});
  EXPECT_TRUE(dir_names(dir / "store").empty());
}

TEST(DirStore, SkipsCorruptRecordsLoggingTheirPathAndListsTheGoodOnes) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_monitor(make_record("nfs1", "good1")).ok());
  ASSERT_TRUE(store->put_monitor(make_record("nfs1", "good2")).ok());
  ASSERT_TRUE(store->put_monitor(make_record("nfs1", "tampered")).ok());
  const std::string mon = dir / "nfs1/monitor";

  write_raw_file(mon + "/garbage.json", "\x01\x02 not json");
  write_raw_file(mon + "/truncated.json", read_raw_file(mon + "/good1.json").substr(0, 40));
  write_raw_file(mon + "/empty.json", "");
  // Valid JSON whose raw line no longer matches its fields (edited by hand, bit rot).
  std::string tampered = read_raw_file(mon + "/tampered.json");
  tampered.replace(tampered.find("\"my_name\": \"server1\""), 20, "\"my_name\": \"serverX\"");
  write_raw_file(mon + "/tampered.json", tampered);
  // A good document stored under another file's name.
  write_raw_file(mon + "/moved.json", read_raw_file(mon + "/good2.json"));
  write_raw_file(mon + "/README", "not a record");
  write_raw_file(mon + "/evil\nWARN forged.json", read_raw_file(mon + "/good1.json"));
  ASSERT_EQ(::mkdir((mon + "/dir.json").c_str(), 0700), 0);
  ASSERT_EQ(::symlink((mon + "/good1.json").c_str(), (mon + "/link.json").c_str()), 0);

  LogCapture log;
  auto listed = store->list_monitor("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].file_name, "good1");
  EXPECT_EQ((*listed)[1].file_name, "good2");
  const std::string logged = log.text();
  for (std::string bad : {"garbage.json", "truncated.json", "empty.json", "tampered.json",
                          "moved.json", "dir.json", "link.json", "README"}) {
    EXPECT_THAT(logged, HasSubstr(mon + "/" + bad)) << bad << " skipped silently";
  }
  EXPECT_THAT(logged, HasSubstr("evil\\x0aWARN forged.json"));
  EXPECT_THAT(logged, ::testing::Not(HasSubstr("\nWARN forged")));
}

TEST(DirStore, IgnoresATempFileLeftByACrashBetweenWriteAndRename) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_monitor(make_record("nfs1", "client")).ok());
  const std::string mon = dir / "nfs1/monitor";
  // What a writer killed after fsync and before rename leaves: a complete or a partial temp.
  const std::string whole = read_raw_file(mon + "/client.json");
  write_raw_file(mon + "/.other.json.lockferry-tmp.4242.00112233aabbccdd", whole);
  write_raw_file(mon + "/.client.json.lockferry-tmp.4243.ffeeddccbbaa9988", whole.substr(0, 10));

  LogCapture log;
  auto listed = store->list_monitor("nfs1");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].file_name, "client");
  EXPECT_EQ(log.text(), "");
}

TEST(DirStore, StoresAndListsMigrations) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  MigrationRecord m{"nfs-1", "nfs2", 1, 100, 0, 0, "192.0.2.10", "sm-notify", ""};
  ASSERT_TRUE(store->put_migration(m).ok());
  m.finished_ns = 200;
  m.records = 3;
  m.result = "ok";
  ASSERT_TRUE(store->put_migration(m).ok());  // update, same key
  MigrationRecord earlier{"nfs3", "nfs2", 4, 50, 60, 1, "192.0.2.11", "restart", "ok"};
  ASSERT_TRUE(store->put_migration(earlier).ok());
  write_raw_file(dir / "migrations/nfs9-1.json", "{broken");

  auto all = store->list_migrations();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0], earlier);
  EXPECT_EQ((*all)[1], m);
  EXPECT_TRUE(std::filesystem::exists(dir / "migrations/nfs-1-1.json"));
  EXPECT_EQ(*store->list_nodes(), std::vector<std::string>{});  // "migrations" is not a node
}

// Runs `body` in a child process that first makes `path` read-only: a read-only bind mount
// when root (EROFS), else a directory without write permission (EACCES). Returns the child's
// exit code; 77 means the environment could not be set up.
int with_read_only(const std::string& path, const std::function<int()>& body) {
  return run_in_processes(1, [&](int) {
    if (::geteuid() == 0) {
      if (::unshare(CLONE_NEWNS) != 0 ||
          ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          ::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
          ::mount(nullptr, path.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
        return 77;
      }
    } else {
      for (const auto& e : std::filesystem::recursive_directory_iterator(path)) {
        if (e.is_directory()) ::chmod(e.path().c_str(), 0555);
      }
      ::chmod(path.c_str(), 0555);
    }
    return body();
  })[0];
}

TEST(DirStore, ReadOnlyStoreGivesAClearErrorAndChangesNothing) {
  TempDir dir;
  const std::string root = dir / "store";
  auto store = open_at(root);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_monitor(make_record("nfs1", "client")).ok());
  const std::string before = read_raw_file(root + "/nfs1/monitor/client.json");
  const std::string message_file = dir / "message";

  int code = with_read_only(root, [&] {
    auto ro = open_store("dir://" + root);
    if (!ro.ok()) return 10;
    if (!(*ro)->list_monitor("nfs1").ok() || (*ro)->list_monitor("nfs1")->size() != 1) return 11;
    auto changed = make_record("nfs1", "client", 0, "server2");
    auto put = (*ro)->put_monitor(changed);
    auto fresh = (*ro)->put_monitor(make_record("nfs3", "client"));
    if (put.ok() || fresh.ok()) return 12;
    write_raw_file(message_file, put.error().message + "\n" + fresh.error().message);
    return 0;
  });
  if (code == 77) GTEST_SKIP() << "cannot make a read-only bind mount here";
  ASSERT_EQ(code, 0);
  const std::string message = read_raw_file(message_file);
  EXPECT_THAT(message, HasSubstr(root + "/nfs1/monitor"));
  EXPECT_TRUE(message.find("EROFS") != std::string::npos ||
              message.find("EACCES") != std::string::npos)
      << message;
  EXPECT_EQ(read_raw_file(root + "/nfs1/monitor/client.json"), before);
  EXPECT_EQ(dir_names(root + "/nfs1/monitor"), std::vector<std::string>{"client.json"});
}

TEST(DirStore, FullStoreGivesAClearErrorAndLeavesNothingPartial) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  TempDir dir;
  const std::string root = dir / "small";
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  const std::string message_file = dir / "message";
  int code = run_in_processes(1, [&](int) {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        // mode: a tmpfs root is 1777 by default, which the store refuses (others could plant
        // links in it).
        ::mount("tmpfs", root.c_str(), "tmpfs", 0, "size=64k,mode=0750") != 0) {
      return 77;
    }
    auto store = open_store("dir://" + root);
    if (!store.ok() || !(*store)->put_monitor(make_record("nfs1", "before")).ok()) return 10;
    // Fill the file system to the last byte.
    int fd = ::open((root + "/filler").c_str(), O_WRONLY | O_CREAT, 0600);
    std::string block(4096, 'f');
    while (::write(fd, block.data(), block.size()) > 0) {
    }
    while (::write(fd, block.data(), 1) > 0) {
    }
    ::close(fd);
    auto put = (*store)->put_monitor(make_record("nfs1", "after"));
    if (put.ok()) return 11;
    std::string report = put.error().message + "\n";
    for (const auto& name : dir_names(root + "/nfs1/monitor")) report += "file:" + name + "\n";
    auto listed = (*store)->list_monitor("nfs1");
    if (!listed.ok() || listed->size() != 1) return 12;
    write_raw_file(message_file, report);
    return 0;
  })[0];
  if (code == 77) GTEST_SKIP() << "cannot mount tmpfs in a new mount namespace here";
  ASSERT_EQ(code, 0);
  const std::string report = read_raw_file(message_file);
  EXPECT_THAT(report, HasSubstr("ENOSPC"));
  EXPECT_THAT(report, HasSubstr(root + "/nfs1/monitor/after.json"));
  EXPECT_THAT(report, HasSubstr("file:before.json\n"));
  EXPECT_THAT(report, ::testing::Not(HasSubstr("file:after")));
  EXPECT_THAT(report, ::testing::Not(HasSubstr("file:.")));  // no temp file left
}

TEST(OpenStore, ExplainsBadUrls) {
  TempDir dir;
  struct Case {
    std::string url;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"nfs://server/var/lib/lockferry", "supported: dir://"},
      {"/var/lib/lockferry", "no scheme"},
      {"dir://relative/path", "absolute path"},
      {"dir://", "absolute path"},
      {"dir:///srv/../etc", "'..'"},
      {"dir:///srv/./x", "'.'"},
  };
  for (const auto& c : cases) {
    auto store = open_store(c.url);
    ASSERT_FALSE(store.ok()) << c.url;
    EXPECT_THAT(store.error().message, HasSubstr(c.expected)) << c.url;
  }
  write_raw_file(dir / "file", "x");
  auto on_file = open_store("dir://" + (dir / "file"));
  ASSERT_FALSE(on_file.ok());
  EXPECT_THAT(on_file.error().message, HasSubstr("not a directory"));
}

TEST(OpenStore, CreatesTheRootAndReportsItsUrl) {
  TempDir dir;
  auto store = open_store("dir://" + (dir / "a/b/store") + "/");
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->url(), "dir://" + (dir / "a/b/store"));
  EXPECT_TRUE(std::filesystem::is_directory(dir / "a/b/store"));
}

}  // namespace
}  // namespace lockferry::store
