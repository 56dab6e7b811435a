// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes as a dir:// store document — a monitor record document, a
// lock table and a migration record — read back through the store's own list path, and what it
// lists replayed into a statd directory. Beyond "no crash": a listed record is valid and belongs
// where it was stored, and replay never writes anything but that one file.
#include <dirent.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/files.h"
#include "failover/replayer.h"
#include "fuzz_check.h"
#include "statmon/record.h"
#include "store/store.h"

using namespace lockferry;
namespace fs = std::filesystem;

namespace {

constexpr const char* kNode = "nodeA";
constexpr const char* kFile = "client.example";

struct Bed {
  std::string root;   // everything below is removed at exit
  std::string store;  // the dir:// store
  std::string sm;     // a statd monitor directory to replay into
  std::unique_ptr<store::Store> opened;

  Bed() = default;
  Bed(Bed&& other) noexcept
      : root(std::exchange(other.root, {})),
        store(std::move(other.store)),
        sm(std::move(other.sm)),
        opened(std::move(other.opened)) {}
  ~Bed() {
    std::error_code ec;
    if (!root.empty()) fs::remove_all(root, ec);
  }
};

Bed& bed() {
  static Bed b = [] {
    Bed out;
    // /dev/shm keeps the per-input file writes in memory.
    std::string tmpl =
        (fs::exists("/dev/shm") ? std::string("/dev/shm") : fs::temp_directory_path().string()) +
        "/lockferry-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    out.root = tmpl;
    out.store = out.root + "/store";
    out.sm = out.root + "/sm";
    fs::create_directories(out.store + "/" + kNode + "/monitor");
    fs::create_directories(out.store + "/migrations");
    fs::create_directories(out.sm);
    auto s = store::open_store("dir://" + out.store);
    if (!s) std::abort();
    out.opened = std::move(*s);
    return out;
  }();
  return b;
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  bed();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bed& b = bed();
  const std::string_view doc(reinterpret_cast<const char*>(data), size);
  const std::string node_dir = b.store + "/" + kNode;
  LF_FUZZ_CHECK(files::write_file_atomically(node_dir + "/monitor", std::string(kFile) + ".json",
                                             doc, 0640, std::nullopt, false)
                    .ok(),
                "cannot write the monitor document");
  LF_FUZZ_CHECK(
      files::write_file_atomically(node_dir, "locks.json", doc, 0640, std::nullopt, false).ok(),
      "cannot write the lock table");
  LF_FUZZ_CHECK(
      files::write_file_atomically(b.store + "/migrations", std::string(kNode) + "-1.json", doc,
                                   0640, std::nullopt, false)
          .ok(),
      "cannot write the migration");

  // Monitor records: only valid records of this node and file come out.
  auto records = b.opened->list_monitor(kNode);
  LF_FUZZ_CHECK(records.ok(), "a corrupt document failed the whole listing: %s",
                records.error().message.c_str());
  for (const auto& r : *records) {
    LF_FUZZ_CHECK(r.node == kNode && r.file_name == kFile, "a listed record claims another home");
    auto ok = statmon::check_record(r);
    LF_FUZZ_CHECK(ok.ok(), "a listed record is invalid: %s", ok.error().message.c_str());
    LF_FUZZ_CHECK(!r.raw.empty() && r.raw == statmon::format_record(r),
                  "raw line differs from its fields");
  }
  if (!records->empty()) {
    // Replay what the store hands out: it lands as exactly one file in sm/ and nowhere else.
    auto report = failover::replay(*records, failover::ReplayOptions{b.sm, false});
    LF_FUZZ_CHECK(report.ok(), "replay failed: %s", report.error().message.c_str());
    const auto in_sm = names_in(b.sm);
    LF_FUZZ_CHECK(in_sm.size() <= 1 && (in_sm.empty() || in_sm.front() == kFile),
                  "replay wrote an unexpected file");
    LF_FUZZ_CHECK(names_in(b.root).size() == 2, "replay wrote beside the statd directory");
    std::error_code ec;
    fs::remove(b.sm + "/" + kFile, ec);
  }

  // Lock table: an error or valid locks of this node, never a crash.
  auto locks = b.opened->list_locks(kNode);
  if (locks) {
    for (const auto& l : *locks) {
      LF_FUZZ_CHECK(l.node == kNode, "a listed lock names another node");
      LF_FUZZ_CHECK(l.start <= l.end && (l.type == "read" || l.type == "write"),
                    "an invalid lock was listed");
    }
  } else {
    LF_FUZZ_CHECK(!locks.error().message.empty(), "a refusal without a message");
  }

  // Migrations: a corrupt record is skipped, the listing itself works.
  auto migrations = b.opened->list_migrations();
  LF_FUZZ_CHECK(migrations.ok(), "a corrupt migration failed the listing: %s",
                migrations.error().message.c_str());
  for (const auto& m : *migrations) {
    LF_FUZZ_CHECK(m.from_node == kNode && m.epoch == 1,
                  "a listed migration does not match its file name");
  }
  auto nodes = b.opened->list_nodes();
  LF_FUZZ_CHECK(nodes.ok() && nodes->size() == 1, "node listing changed");
  return 0;
}
