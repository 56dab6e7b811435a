// SPDX-License-Identifier: Apache-2.0
// The dir:// lock table's base document and journal lines; see dir_lock_table.h.
#include "store/dir_lock_table.h"

#include <fmt/format.h>
#include <sodium.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/clock.h"
#include "common/text.h"
#include "statmon/record.h"
#include "store/document_limits.h"
#include "store/json_numbers.h"
#include "store/record_checks.h"

namespace lockferry::store {
namespace {

using nlohmann::json;

constexpr int kFormat = 1;
constexpr std::string_view kJournalPrefix = "locks.";
constexpr std::string_view kJournalSuffix = ".log";
constexpr std::size_t kGenerationBytes = 8;

std::string dump_line(const json& j) {
  // Names are validated as UTF-8 before they get here; replace keeps a write from throwing.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json lock_to_json(const LockRecord& l) {
  return json{{"node", l.node},
              {"epoch", l.epoch},
              {"manager_comm", l.manager_comm},
              {"manager_pid", l.manager_pid},
              {"dev", l.dev},
              {"ino", l.ino},
              {"path", l.path},
              {"start", l.start},
              {"end", l.end},
              {"type", l.type},
              {"owner", l.owner},
              {"owner_pid", l.owner_pid},
              {"granted_ns", l.granted_ns},
              {"nlm_host", l.nlm_host},
              {"client_addr", l.client_addr},
              {"server_addr", l.server_addr}};
}

// Throws json::exception on missing or mistyped fields; the caller turns that into an Error.
Result<LockRecord> lock_from_json(const json& j) {
  LockRecord l;
  j.at("node").get_to(l.node);
  j.at("epoch").get_to(l.epoch);
  j.at("manager_comm").get_to(l.manager_comm);
  j.at("manager_pid").get_to(l.manager_pid);
  j.at("dev").get_to(l.dev);
  j.at("ino").get_to(l.ino);
  j.at("path").get_to(l.path);
  j.at("start").get_to(l.start);
  j.at("end").get_to(l.end);
  j.at("type").get_to(l.type);
  j.at("owner").get_to(l.owner);
  j.at("owner_pid").get_to(l.owner_pid);
  j.at("granted_ns").get_to(l.granted_ns);
  l.nlm_host = j.value("nlm_host", std::string());
  l.client_addr = j.value("client_addr", std::string());
  l.server_addr = j.value("server_addr", std::string());
  if (auto ok = check_lock(l); !ok) return ok.error();
  return l;
}

// The locks of a document's array, each checked and of `node`; throws json::exception.
Result<std::vector<LockRecord>> locks_from_json(const json& array, std::string_view node) {
  std::vector<LockRecord> out;
  for (const auto& j : array) {
    auto l = lock_from_json(j);
    if (!l) return make_error("lock {}: {}", out.size() + 1, l.error().message);
    if (l->node != node) return make_error("lock {} names another node", out.size() + 1);
    out.push_back(std::move(*l));
  }
  return out;
}

bool is_generation(std::string_view g) {
  return g.size() == 2 * kGenerationBytes &&
         g.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// A removed key is one string, "dev:ino:owner:start": as an array of four small numbers it would
// spend under 8 bytes per JSON value, which check_document_shape refuses (hostile documents of
// tiny values are how a parser is made to use many times a file's size in memory).
std::string key_text(const LockKey& k) {
  return fmt::format("{}:{}:{}:{}", k.dev, k.ino, k.owner, k.start);
}

std::optional<LockKey> key_from_text(std::string_view text) {
  std::uint64_t v[4];
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 4; ++i) {
    auto [next, ec] = std::from_chars(p, end, v[i]);
    if (ec != std::errc() || next == p) return std::nullopt;
    if (i < 3 && (next == end || *next != ':')) return std::nullopt;
    p = i < 3 ? next + 1 : next;
  }
  if (p != end) return std::nullopt;
  return LockKey{v[0], v[1], v[2], v[3]};
}

// One complete journal line as a delta; throws json::exception.
Result<LockDelta> delta_from_json(std::string_view line, std::string_view node) {
  if (auto ok = check_document_shape(line, "the line"); !ok) return ok.error();
  const json j = json::parse(line);
  if (holds_non_integer(j)) return make_error("{}", kNotInteger);
  LockDelta delta;
  for (const auto& k : j.at("removed")) {
    auto key = k.is_string() ? key_from_text(k.get<std::string>()) : std::nullopt;
    if (!key) return make_error("a removed key is not \"dev:ino:owner:start\"");
    delta.removed.push_back(*key);
  }
  auto put = locks_from_json(j.at("put"), node);
  if (!put) return put.error();
  delta.put = std::move(*put);
  return delta;
}

}  // namespace

std::string new_lock_generation() {
  unsigned char bytes[kGenerationBytes];
  randombytes_buf(bytes, sizeof bytes);
  return text::to_hex(bytes);
}

std::string lock_journal_name(std::string_view generation) {
  return std::string(kJournalPrefix) + std::string(generation) + std::string(kJournalSuffix);
}

bool is_lock_journal_name(std::string_view name) {
  if (!name.starts_with(kJournalPrefix) || !name.ends_with(kJournalSuffix)) return false;
  name.remove_prefix(kJournalPrefix.size());
  name.remove_suffix(kJournalSuffix.size());
  return is_generation(name);
}

std::string format_lock_base(std::string_view node, std::uint64_t epoch,
                             std::string_view generation, const std::vector<LockRecord>& locks) {
  std::string text = fmt::format(
      "{{\"format\": {}, \"node\": {}, \"epoch\": {}, \"written_ns\": {}, \"generation\": \"{}\", "
      "\"locks\": [",
      kFormat, json(std::string(node)).dump(), epoch, clock::now_ns(), generation);
  for (std::size_t i = 0; i < locks.size(); ++i) {
    text += i == 0 ? "\n  " : ",\n  ";
    text += dump_line(lock_to_json(locks[i]));
  }
  text += locks.empty() ? "]}\n" : "\n]}\n";
  return text;
}

Result<LockTableBase> parse_lock_base(std::string_view text, const std::string& path,
                                      std::string_view node) {
  if (auto ok = check_document_shape(text, path); !ok) return ok.error();
  // The table's DOM is freed on return; a big one's memory goes back to the system then.
  struct Release {
    std::size_t bytes;
    ~Release() { release_memory_after(bytes); }
  } release{text.size()};
  try {
    const json doc = json::parse(text);
    if (holds_non_integer(doc))
      return make_error("{}: not a valid lock table: {}", path, kNotInteger);
    if (doc.at("format").get<int>() != kFormat)
      return make_error("{}: unknown format {}", path, doc.at("format").dump());
    if (doc.at("node").get<std::string>() != node)
      return make_error("{}: belongs to node '{}', not where it is stored", path,
                        statmon::printable(doc.at("node").get<std::string>()));
    LockTableBase base;
    base.generation = doc.value("generation", std::string());
    if (!base.generation.empty() && !is_generation(base.generation))
      return make_error("{}: not a valid lock table generation: '{}'", path,
                        statmon::printable(base.generation));
    auto locks = locks_from_json(doc.at("locks"), node);
    if (!locks) return make_error("{}: {}", path, locks.error().message);
    base.locks = std::move(*locks);
    return base;
  } catch (const json::exception& e) {
    return make_error("{}: not a valid lock table: {}", path, e.what());
  }
}

std::string format_lock_delta(const LockDelta& delta) {
  json removed = json::array();
  for (const auto& k : delta.removed) removed.push_back(key_text(k));
  json put = json::array();
  for (const auto& l : delta.put) put.push_back(lock_to_json(l));
  return dump_line(json{{"removed", std::move(removed)}, {"put", std::move(put)}}) + "\n";
}

Result<void> apply_lock_journal(std::string_view text, const std::string& path,
                                std::string_view node, std::vector<LockRecord>& table) {
  std::size_t line_no = 0;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = text.find('\n', at);
    if (end == std::string_view::npos) break;  // torn: its writer never finished it
    ++line_no;
    try {
      auto delta = delta_from_json(text.substr(at, end - at), node);
      if (!delta) return make_error("{}: line {}: {}", path, line_no, delta.error().message);
      apply_lock_delta(table, *delta);
    } catch (const json::exception& e) {
      return make_error("{}: line {}: not a valid lock delta: {}", path, line_no, e.what());
    }
    at = end + 1;
  }
  return {};
}

}  // namespace lockferry::store
