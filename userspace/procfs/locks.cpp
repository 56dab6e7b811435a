// SPDX-License-Identifier: Apache-2.0
// /proc/locks and fdinfo "lock:" lines -> ProcLock; see locks.h.
#include "procfs/locks.h"

#include <charconv>

namespace lockferry::procfs {

namespace {

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t begin = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\n') ++i;
    if (i > begin) out.push_back(line.substr(begin, i - begin));
    if (i < line.size() && line[i] == '\n') break;
  }
  return out;
}

template <typename T>
bool parse_num(std::string_view text, T& out, int base = 10) {
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

std::optional<ProcLock> parse_proc_lock_line(std::string_view line) {
  if (line.starts_with("lock:")) line.remove_prefix(5);
  const auto tok = split_ws(line);
  std::size_t i = 0;
  ProcLock l;
  if (tok.size() < 8 || !tok[0].ends_with(':') ||
      !parse_num(tok[0].substr(0, tok[0].size() - 1), l.id))
    return std::nullopt;
  ++i;
  if (tok[i] == "->") {
    l.waiting = true;
    ++i;
  }
  // kind, then one word (ADVISORY, *NOINODE*, or a lease's state), then the type.
  if (tok.size() < i + 7) return std::nullopt;
  l.kind = std::string(tok[i]);
  l.type = std::string(tok[i + 2]);
  if (!parse_num(tok[i + 3], l.pid)) return std::nullopt;
  // "fe:00:10953175": major and minor in hex, the inode in decimal. "<none>:0" has no inode.
  const std::string_view devino = tok[i + 4];
  const auto c1 = devino.find(':');
  const auto c2 = c1 == std::string_view::npos ? c1 : devino.find(':', c1 + 1);
  std::uint64_t major = 0, minor = 0;
  if (c2 == std::string_view::npos || !parse_num(devino.substr(0, c1), major, 16) ||
      !parse_num(devino.substr(c1 + 1, c2 - c1 - 1), minor, 16) ||
      !parse_num(devino.substr(c2 + 1), l.ino))
    return std::nullopt;
  l.dev = (major << 20) | minor;
  if (!parse_num(tok[i + 5], l.start)) return std::nullopt;
  if (tok[i + 6] == "EOF")
    l.end = LockRecord::kToEndOfFile;
  else if (!parse_num(tok[i + 6], l.end))
    return std::nullopt;
  return l;
}

std::vector<ProcLock> parse_proc_locks(std::string_view text) {
  std::vector<ProcLock> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (auto l = parse_proc_lock_line(line)) out.push_back(std::move(*l));
  }
  return out;
}

}  // namespace lockferry::procfs
