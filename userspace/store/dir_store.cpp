// SPDX-License-Identifier: Apache-2.0
// dir:// store implementation: JSON documents written atomically, fencing epochs by link().
#include "store/dir_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/clock.h"
#include "common/files.h"
#include "common/text.h"
#include "common/trusted_dirs.h"
#include "statmon/record.h"
#include "store/dir_lock_table.h"
#include "store/document_limits.h"
#include "store/json_numbers.h"
#include "store/record_checks.h"

namespace lockferry::store {
namespace {

using nlohmann::json;

constexpr int kFormat = 1;
constexpr mode_t kDirMode = 0750;
constexpr std::size_t kMaxDocumentBytes = 1 << 20;
constexpr std::string_view kJson = ".json";
constexpr std::string_view kLongName = ".longname";
// How much of a long file name is kept readable in its document's name: 180 + '.' + 64 hex +
// ".longname" = 254 bytes, under NAME_MAX.
constexpr std::size_t kLongNameKept = 180;

std::string dump(const json& doc) {
  // Names are validated as UTF-8 before they get here; replace keeps free-text fields (a
  // migration's result message) from making a write throw.
  return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

json record_to_json(const MonitorRecord& r) {
  return json{{"node", r.node},
              {"epoch", r.epoch},
              {"file_name", r.file_name},
              {"first_seen_ns", r.first_seen_ns},
              {"last_seen_ns", r.last_seen_ns},
              {"addr", fmt::format("{:08x}", r.addr)},
              {"prog", r.prog},
              {"vers", r.vers},
              {"proc", r.proc},
              {"priv", statmon::priv_to_hex(r.priv)},
              {"mon_name", r.mon_name},
              {"my_name", r.my_name},
              {"raw", r.raw}};
}

// Throws json::exception on missing or mistyped fields; the caller turns that into an Error.
Result<MonitorRecord> record_from_json(const json& j) {
  MonitorRecord r;
  j.at("node").get_to(r.node);
  j.at("epoch").get_to(r.epoch);
  j.at("file_name").get_to(r.file_name);
  j.at("first_seen_ns").get_to(r.first_seen_ns);
  j.at("last_seen_ns").get_to(r.last_seen_ns);
  const auto addr = j.at("addr").get<std::string>();
  std::uint32_t a = 0;
  auto [end, ec] = std::from_chars(addr.data(), addr.data() + addr.size(), a, 16);
  if (addr.size() != 8 || ec != std::errc() || end != addr.data() + addr.size()) {
    return make_error("addr '{}' is not 8 hex digits", statmon::printable(addr));
  }
  r.addr = a;
  j.at("prog").get_to(r.prog);
  j.at("vers").get_to(r.vers);
  j.at("proc").get_to(r.proc);
  auto priv = statmon::priv_from_hex(j.at("priv").get<std::string>());
  if (!priv) return make_error("priv {}", priv.error().message);
  r.priv = *priv;
  j.at("mon_name").get_to(r.mon_name);
  j.at("my_name").get_to(r.my_name);
  j.at("raw").get_to(r.raw);
  // The raw line is what replay writes; it must be exactly what the fields say.
  if (r.raw.empty()) return make_error("raw line is missing");
  if (auto ok = statmon::check_record(r); !ok) return ok.error();
  return r;
}

json migration_to_json(const MigrationRecord& m) {
  return json{{"format", kFormat},
              {"from_node", m.from_node},
              {"to_node", m.to_node},
              {"epoch", m.epoch},
              {"started_ns", m.started_ns},
              {"finished_ns", m.finished_ns},
              {"records", m.records},
              {"service_ip", m.service_ip},
              {"recognize_method", m.recognize_method},
              {"result", m.result}};
}

MigrationRecord migration_from_json(const json& j) {
  MigrationRecord m;
  j.at("from_node").get_to(m.from_node);
  j.at("to_node").get_to(m.to_node);
  j.at("epoch").get_to(m.epoch);
  j.at("started_ns").get_to(m.started_ns);
  j.at("finished_ns").get_to(m.finished_ns);
  j.at("records").get_to(m.records);
  j.at("service_ip").get_to(m.service_ip);
  j.at("recognize_method").get_to(m.recognize_method);
  j.at("result").get_to(m.result);
  return m;
}

// The name of the document that holds monitor file `file_name`. statd writes names up to
// NAME_MAX (255 bytes; host names reach 253), and "<file_name>.json" fits only up to 250: a
// longer name is stored as "<its first bytes>.<sha256 of it>.longname" with the whole name in
// the document. No short name's document ends in ".longname", so the forms never collide, and
// stores written before long names were kept read the same.
std::string document_name(std::string_view file_name) {
  if (file_name.size() + kJson.size() <= NAME_MAX)
    return std::string(file_name) + std::string(kJson);
  unsigned char hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, reinterpret_cast<const unsigned char*>(file_name.data()),
                     file_name.size());
  // Cut at a UTF-8 character boundary, so the kept part is still valid UTF-8 (names are).
  std::size_t kept = kLongNameKept;
  while (kept > 0 && (static_cast<unsigned char>(file_name[kept]) & 0xC0) == 0x80) --kept;
  std::string out(file_name.substr(0, kept));
  out += '.';
  out += text::to_hex(hash);
  out += kLongName;
  return out;
}

// Reads and validates one monitor document, the entry `name` of `dirfd` (shown as `path`);
// every problem becomes an Error naming the path. The document must be the one its name says:
// of `node`, for a file name whose document_name() is `name`.
Result<std::vector<MonitorRecord>> load_monitor_document(int dirfd, const std::string& name,
                                                         const std::string& path,
                                                         std::string_view node) {
  auto text = files::read_file_bounded_at(dirfd, name, path, kMaxDocumentBytes);
  if (!text) return text.error();
  if (auto ok = check_document_shape(*text, path); !ok) return ok.error();
  try {
    const json doc = json::parse(*text);
    if (holds_non_integer(doc)) return make_error("{}: {}", path, kNotInteger);
    if (doc.at("format").get<int>() != kFormat) {
      return make_error("{}: unknown format {}", path, doc.at("format").dump());
    }
    const std::string file_name = doc.at("file_name").get<std::string>();
    if (auto ok = statmon::check_file_name(file_name); !ok)
      return make_error("{}: {}", path, ok.error().message);
    if (doc.at("node").get<std::string>() != node || document_name(file_name) != name) {
      return make_error("{}: belongs to node '{}' file '{}', not where it is stored", path,
                        statmon::printable(doc.at("node").get<std::string>()),
                        statmon::printable(doc.at("file_name").get<std::string>()));
    }
    std::vector<MonitorRecord> out;
    for (const auto& j : doc.at("records")) {
      auto r = record_from_json(j);
      if (!r) return make_error("{}: record {}: {}", path, out.size() + 1, r.error().message);
      if (r->node != node || r->file_name != file_name) {
        return make_error("{}: record {} names another node or file", path, out.size() + 1);
      }
      out.push_back(std::move(*r));
    }
    if (out.empty()) return make_error("{}: holds no records", path);
    return out;
  } catch (const json::exception& e) {
    return make_error("{}: not a valid monitor document: {}", path, e.what());
  }
}

// Names in the directory open as `dirfd`, without "." and "..".
Result<std::vector<std::string>> list_names(int dirfd, const std::string& path) {
  std::vector<std::string> names;
  // A duplicate, so that the caller keeps its descriptor for the *at calls that follow.
  files::Fd fd(::fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
  std::unique_ptr<DIR, int (*)(DIR*)> dir(fd.get() < 0 ? nullptr : ::fdopendir(fd.get()),
                                          &::closedir);
  if (!dir) return make_errno_error(errno, "cannot list {} ({})", path, files::errno_name(errno));
  fd.release();            // the DIR owns it now
  ::rewinddir(dir.get());  // the duplicate shares its position with `dirfd`
  errno = 0;
  while (dirent* de = ::readdir(dir.get())) {
    std::string_view name = de->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  if (errno != 0) return make_errno_error(errno, "cannot list {}", path);
  std::sort(names.begin(), names.end());
  return names;
}

// Epoch file names are plain decimal numbers without leading zeros; anything else (temp files)
// is not an epoch.
bool parse_epoch_name(std::string_view name, std::uint64_t& out) {
  if (name.empty() || name.size() > 20 || (name.size() > 1 && name.front() == '0')) return false;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), out);
  return ec == std::errc() && end == name.data() + name.size();
}

// The stored document of one monitor file, after checking every record of it.
Result<std::string> monitor_document(const std::vector<MonitorRecord>& records) {
  if (records.empty()) return make_error("put_monitor_file needs at least one record");
  const MonitorRecord& first = records.front();
  if (auto ok = check_node_name(first.node); !ok) return ok.error();
  if (auto ok = check_stored_file_name(first.file_name); !ok) return ok.error();

  json lines = json::array();
  for (const auto& r : records) {
    if (r.node != first.node || r.file_name != first.file_name || r.epoch != first.epoch) {
      return make_error("records of monitor file '{}' must share node, file name and epoch",
                        statmon::printable(first.file_name));
    }
    if (auto ok = statmon::check_record(r); !ok) return ok.error();
    MonitorRecord stored = r;
    if (stored.raw.empty()) stored.raw = statmon::format_record(stored);
    lines.push_back(record_to_json(stored));
  }
  const json doc{{"format", kFormat},
                 {"node", first.node},
                 {"file_name", first.file_name},
                 {"records", std::move(lines)}};
  return dump(doc);
}

}  // namespace

Result<std::unique_ptr<DirStore>> DirStore::open(const std::string& root) {
  if (root.empty() || root.front() != '/') {
    return make_error("dir:// store root '{}' must be an absolute path", root);
  }
  std::string clean = root;
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  // Created (when missing) and checked here rather than at the first write: a root others can
  // write is a setup error.
  if (auto root = files::create_trusted_directory(clean, kDirMode); !root)
    return make_error("cannot open dir:// store: {}", root.error().message);
  return std::unique_ptr<DirStore>(new DirStore(std::move(clean)));
}

Result<files::Fd> DirStore::open_dir(std::string_view relative, bool create) {
  // The root is opened again for every operation (a few system calls next to the fsyncs): a
  // descriptor held for the store's lifetime would go stale when its NFS mount is remounted.
  // Its parents are checked to belong to root, so the path cannot be redirected meanwhile.
  auto root = files::open_trusted_directory(root_, files::ParentOwners::trusted_only);
  if (!root || relative.empty()) return root;
  return files::open_directory_beneath(root->get(), root_, relative, create, kDirMode);
}

Result<std::vector<std::string>> DirStore::list_dir(std::string_view relative) {
  auto dir = open_dir(relative, false);
  if (!dir) {
    if (dir.error().code == ENOENT) return std::vector<std::string>{};
    return dir.error();
  }
  return list_names(dir->get(), relative.empty() ? root_ : root_ + "/" + std::string(relative));
}

std::string DirStore::url() const { return "dir://" + root_; }

std::string DirStore::node_dir(std::string_view node) const {
  return root_ + "/" + std::string(node);
}

Result<std::uint64_t> DirStore::epoch(std::string_view node) {
  if (auto ok = check_node_name(node); !ok) return ok.error();
  auto names = list_dir(std::string(node) + "/epochs");
  if (!names) return names.error();
  std::uint64_t current = 0;
  for (const auto& name : *names) {
    std::uint64_t n = 0;
    if (parse_epoch_name(name, n)) current = std::max(current, n);
  }
  return current;
}

Result<std::string> DirStore::epoch_adopter(std::string_view node, std::uint64_t epoch) {
  const std::string path = node_dir(node) + "/epochs/" + std::to_string(epoch);
  auto dirfd = open_dir(std::string(node) + "/epochs", false);
  if (!dirfd) return dirfd.error();
  auto text =
      files::read_file_bounded_at(dirfd->get(), std::to_string(epoch), path, kMaxDocumentBytes);
  if (!text) return text.error();
  try {
    const json doc = json::parse(*text);
    if (holds_non_integer(doc)) return make_error("{}: {}", path, kNotInteger);
    if (doc.at("format").get<int>() != kFormat)
      return make_error("{}: unknown format {}", path, doc.at("format").dump());
    if (doc.at("node").get<std::string>() != node || doc.at("epoch").get<std::uint64_t>() != epoch)
      return make_error("{}: names another node or epoch", path);
    // Epoch files of lockferry before the adopter was part of the fence have none.
    auto adopter = doc.value("adopter", std::string());
    if (!adopter.empty()) {
      if (auto ok = check_node_name(adopter); !ok)
        return make_error("{}: adopter: {}", path, ok.error().message);
    }
    return adopter;
  } catch (const json::exception& e) {
    return make_error("{}: not a valid epoch file: {}", path, e.what());
  }
}

Result<Fence> DirStore::fence(std::string_view node) {
  auto current = epoch(node);
  if (!current) return current.error();
  if (*current == 0) return Fence{};
  // Epoch files are never removed or rewritten, so the one found is still there to read.
  auto adopter = epoch_adopter(node, *current);
  if (!adopter) return adopter.error();
  return Fence{*current, std::move(*adopter)};
}

// The compare-and-set is the creation of the file named <expected+1>, by link() of a temp file
// that already holds the whole document (adopter included), fsynced: the name appears with its
// content, so no reader ever sees the new epoch without its adopter. On NFS, LINK is one RPC the
// server's filesystem executes atomically: of several clients linking the same name exactly one
// succeeds and every other one gets EEXIST, whatever their caches say. (O_CREAT|O_EXCL is atomic
// there too, but the file would exist, empty, before its adopter is written into it.) A stale
// client cache can only show an older epoch: the reader then links a name that exists and loses.
// A retransmitted LINK that reports EEXIST for its own first attempt is recognised by the temp
// file's link count (files::create_file_exclusively). The winner closed its temp file before the
// link, so close-to-open consistency gives any client that opens the epoch file its content.
Result<std::uint64_t> DirStore::bump_epoch(std::string_view node, std::uint64_t expected,
                                           std::string_view adopter) {
  if (!adopter.empty()) {
    if (auto ok = check_node_name(adopter); !ok)
      return make_error("adopter of node '{}': {}", statmon::printable(node), ok.error().message);
  }
  // Who holds an epoch, for the loser's message; an unreadable file only makes it vaguer.
  auto holder = [&](std::uint64_t epoch) {
    auto found = epoch_adopter(node, epoch);
    return found ? *found : std::string();
  };
  auto current = epoch(node);
  if (!current) return current.error();
  if (*current != expected) {
    return epoch_moved(node, expected, *current, *current == 0 ? "" : holder(*current));
  }
  if (expected == UINT64_MAX) return make_error("epoch of node '{}' is exhausted", node);
  const std::string dir = node_dir(node) + "/epochs";
  auto dirfd = open_dir(std::string(node) + "/epochs", true);
  if (!dirfd) return dirfd.error();

  const std::uint64_t next = expected + 1;
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  const json doc{{"format", kFormat},       {"node", std::string(node)},
                 {"epoch", next},           {"adopter", std::string(adopter)},
                 {"by_host", host},         {"by_pid", ::getpid()},
                 {"at_ns", clock::now_ns()}};
  // Only the name decides the epoch: whoever links <expected+1> first wins, everyone else sees
  // EEXIST. Names are never removed, so a stale `expected` can never succeed later.
  auto created = files::create_file_exclusively_at(dirfd->get(), dir, std::to_string(next),
                                                   dump(doc), kFileMode);
  if (!created) return created.error();
  if (!*created) return epoch_moved(node, expected, next, holder(next));
  spdlog::info("dir store {}: node '{}' is now at fencing epoch {}, adopted by '{}'", root_, node,
               next, statmon::printable(adopter));
  return next;
}

Result<void> DirStore::check_not_fenced(std::string_view node, std::uint64_t epoch,
                                        std::string_view action) {
  auto current = this->epoch(node);
  if (!current) return current.error();
  if (epoch < *current) return fenced(node, *current, epoch, action);
  return {};
}

Result<void> DirStore::put_monitor(const MonitorRecord& record) {
  return put_monitor_file({record});
}

Result<void> DirStore::put_monitor_file(const std::vector<MonitorRecord>& records) {
  return put_monitor_files({records});
}

Result<void> DirStore::put_monitor_files(const std::vector<std::vector<MonitorRecord>>& batch) {
  // Per node: its documents, and the oldest epoch any of them is written with.
  struct NodeBatch {
    std::vector<files::FileContent> documents;
    std::string first_file_name;  // for messages
    std::uint64_t epoch = UINT64_MAX;
  };
  std::map<std::string, NodeBatch> nodes;
  for (const auto& records : batch) {
    auto document = monitor_document(records);
    if (!document) return document.error();
    NodeBatch& node = nodes[records.front().node];
    if (node.documents.empty()) node.first_file_name = records.front().file_name;
    node.documents.push_back({document_name(records.front().file_name), std::move(*document)});
    node.epoch = std::min(node.epoch, records.front().epoch);
  }
  auto action = [](const NodeBatch& node) {
    const std::string& file_name = node.first_file_name;
    if (node.documents.size() == 1)
      return fmt::format("writing monitor record '{}'", statmon::printable(file_name));
    return fmt::format("writing {} monitor records ('{}', ...)", node.documents.size(),
                       statmon::printable(file_name));
  };
  // Fencing is checked for every node before anything is written, so a fenced writer's batch
  // leaves the store untouched.
  for (const auto& [name, node] : nodes) {
    if (auto ok = check_not_fenced(name, node.epoch, action(node)); !ok) return ok;
  }
  for (const auto& [name, node] : nodes) {
    const std::string dir = node_dir(name) + "/monitor";
    auto dirfd = open_dir(name + "/monitor", true);
    if (!dirfd) return dirfd.error();
    if (auto ok = files::write_files_atomically_at(dirfd->get(), dir, node.documents, kFileMode);
        !ok)
      return ok;
  }
  // A bump that raced with this write: the records landed, but the writer must learn now that
  // it is fenced rather than at its next write.
  for (const auto& [name, node] : nodes) {
    if (auto ok = check_not_fenced(name, node.epoch, action(node)); !ok) return ok;
  }
  return {};
}

Result<void> DirStore::delete_monitor(std::string_view node, std::string_view file_name,
                                      std::uint64_t epoch) {
  if (auto ok = check_node_name(node); !ok) return ok.error();
  if (auto ok = check_stored_file_name(file_name); !ok) return ok.error();
  const std::string action =
      fmt::format("deleting monitor record '{}'", statmon::printable(file_name));
  if (auto ok = check_not_fenced(node, epoch, action); !ok) return ok;

  const std::string dir = node_dir(node) + "/monitor";
  const std::string name = document_name(file_name);
  const std::string path = dir + "/" + name;
  auto dirfd = open_dir(std::string(node) + "/monitor", false);
  if (!dirfd) return dirfd.error().code == ENOENT ? Result<void>() : dirfd.error();
  if (::unlinkat(dirfd->get(), name.c_str(), 0) != 0) {
    if (errno == ENOENT) return {};
    return make_errno_error(errno, "cannot delete {} ({})", path, files::errno_name(errno));
  }
  if (::fsync(dirfd->get()) != 0) return make_errno_error(errno, "cannot sync directory {}", dir);
  return {};
}

Result<std::vector<MonitorRecord>> DirStore::list_monitor(std::string_view node) {
  if (auto ok = check_node_name(node); !ok) return ok.error();
  const std::string dir = node_dir(node) + "/monitor";
  auto dirfd = open_dir(std::string(node) + "/monitor", false);
  if (!dirfd && dirfd.error().code == ENOENT) return std::vector<MonitorRecord>{};
  if (!dirfd) return dirfd.error();
  auto names = list_names(dirfd->get(), dir);
  if (!names) return names.error();

  std::vector<MonitorRecord> out;
  for (const auto& name : *names) {
    // Dot files: our temp files (a writer crashed or is mid-write) and anything hidden.
    if (name.front() == '.') continue;
    // Whatever is in the directory is input: print it escaped so a name cannot forge log lines.
    const std::string path = dir + "/" + name;
    const std::string shown = dir + "/" + statmon::printable(name, 300);
    if (!ends_with(name, kJson) && !ends_with(name, kLongName)) {
      spdlog::warn("dir store: skipping {}: not a monitor document (no .json suffix)", shown);
      continue;
    }
    if (ends_with(name, kJson)) {
      const std::string file_name = name.substr(0, name.size() - kJson.size());
      if (auto ok = statmon::check_file_name(file_name); !ok) {
        spdlog::warn("dir store: skipping {}: {}", shown, ok.error().message);
        continue;
      }
    }
    auto records = load_monitor_document(dirfd->get(), name, path, node);
    if (!records) {
      spdlog::warn("dir store: skipping corrupt monitor record {}: {}", shown,
                   records.error().message);
      continue;
    }
    for (auto& r : *records) out.push_back(std::move(r));
  }
  // Names were sorted as "<file_name>.json"; '.' can sort a prefix after a longer name, so
  // sort by the file name itself (stable: lines of one file keep their order).
  std::stable_sort(out.begin(), out.end(), [](const MonitorRecord& a, const MonitorRecord& b) {
    return a.file_name < b.file_name;
  });
  return out;
}

Result<std::vector<std::string>> DirStore::list_nodes() {
  auto root = open_dir("", false);
  if (!root) return root.error();
  auto names = list_names(root->get(), root_);
  if (!names) return names.error();
  std::vector<std::string> nodes;
  for (const auto& name : *names) {
    if (!check_node_name(name)) continue;  // "migrations", dot files, strays
    // A link is not a node: nothing of the store is reached through one.
    struct stat st {};
    if (::fstatat(root->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISDIR(st.st_mode)) {
      nodes.push_back(name);
    }
  }
  return nodes;
}

Result<void> DirStore::put_migration(const MigrationRecord& m) {
  if (auto ok = check_node_name(m.from_node); !ok)
    return make_error("migration: {}", ok.error().message);
  if (auto ok = check_node_name(m.to_node); !ok)
    return make_error("migration: {}", ok.error().message);
  const std::string dir = root_ + "/migrations";
  auto dirfd = open_dir("migrations", true);
  if (!dirfd) return dirfd.error();
  return files::write_file_atomically_at(dirfd->get(), dir,
                                         fmt::format("{}-{}{}", m.from_node, m.epoch, kJson),
                                         dump(migration_to_json(m)), kFileMode);
}

Result<std::vector<MigrationRecord>> DirStore::list_migrations() {
  const std::string dir = root_ + "/migrations";
  auto dirfd = open_dir("migrations", false);
  if (!dirfd && dirfd.error().code == ENOENT) return std::vector<MigrationRecord>{};
  if (!dirfd) return dirfd.error();
  auto names = list_names(dirfd->get(), dir);
  if (!names) return names.error();
  std::vector<MigrationRecord> out;
  for (const auto& name : *names) {
    if (name.front() == '.' || !ends_with(name, kJson)) continue;
    const std::string path = dir + "/" + name;
    if (auto ok = statmon::check_file_name(name); !ok) {
      spdlog::warn("dir store: skipping migration record {}: {}",
                   dir + "/" + statmon::printable(name), ok.error().message);
      continue;
    }
    auto text = files::read_file_bounded_at(dirfd->get(), name, path, kMaxDocumentBytes);
    if (!text) {
      spdlog::warn("dir store: skipping migration record {}: {}", path, text.error().message);
      continue;
    }
    if (auto ok = check_document_shape(*text, path); !ok) {
      spdlog::warn("dir store: skipping migration record: {}", ok.error().message);
      continue;
    }
    try {
      const json doc = json::parse(*text);
      if (holds_non_integer(doc)) throw std::runtime_error(std::string(kNotInteger));
      if (doc.at("format").get<int>() != kFormat) throw std::runtime_error("unknown format");
      MigrationRecord m = migration_from_json(doc);
      if (name != fmt::format("{}-{}{}", m.from_node, m.epoch, kJson)) {
        throw std::runtime_error("its from_node/epoch do not match its file name");
      }
      out.push_back(std::move(m));
    } catch (const std::exception& e) {  // json::exception or the checks above
      spdlog::warn("dir store: skipping corrupt migration record {}: {}", path, e.what());
    }
  }
  std::sort(out.begin(), out.end(), [](const MigrationRecord& a, const MigrationRecord& b) {
    return std::tie(a.started_ns, a.from_node, a.epoch) <
           std::tie(b.started_ns, b.from_node, b.epoch);
  });
  return out;
}

}  // namespace lockferry::store
