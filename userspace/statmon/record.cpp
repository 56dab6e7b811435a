// SPDX-License-Identifier: Apache-2.0
// statd monitor record parsing and formatting; the rules and their nfs-utils sources are in
// record.h. Parsing is stricter than statd's sscanf so that every accepted line formats back
// to the same bytes.
#include "statmon/record.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <cstring>

#include "common/text.h"

namespace lockferry::statmon {
namespace {

constexpr std::string_view kFieldNames[7] = {"addr", "prog",     "vers",   "proc",
                                             "priv", "mon_name", "my_name"};

// What is wrong with the bytes of a name, if anything: the rules shared by file names and the
// two name fields.
std::string name_bytes_problem(std::string_view name, std::size_t max_bytes) {
  if (name.empty()) return "is empty";
  if (name.size() > max_bytes) {
    return fmt::format("is {} bytes long, more than the {} allowed", name.size(), max_bytes);
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c == 0) return fmt::format("contains a NUL byte at offset {}", i);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') {
      return fmt::format("contains white space (\\x{:02x}) at offset {}", c, i);
    }
    if (c < 0x20 || c == 0x7f)
      return fmt::format("contains control character \\x{:02x} at offset {}", c, i);
    if (c == '/') return fmt::format("contains '/' at offset {}", i);
  }
  if (auto bad = text::invalid_utf8_at(name); bad != std::string_view::npos) {
    return fmt::format("is not valid UTF-8 (byte {})", bad);
  }
  if (name.front() == '.') return "starts with '.'";
  return {};
}

Result<std::uint32_t> parse_hex32(std::string_view field) {
  if (field.size() != 8) return make_error("is {} characters, not 8", field.size());
  std::array<std::uint8_t, 4> bytes{};
  if (!text::from_hex(field, bytes))
    return make_error("is not 8 lowercase hex digits as statd writes them");
  return std::uint32_t{bytes[0]} << 24 | std::uint32_t{bytes[1]} << 16 |
         std::uint32_t{bytes[2]} << 8 | bytes[3];
}

std::string where(std::string_view file_name, std::size_t line) {
  return fmt::format("monitor record '{}', line {}", printable(file_name), line);
}

Result<MonitorRecord> parse_line(std::string_view file_name, std::size_t line_no,
                                 std::string_view line) {
  std::string_view text = line.substr(0, line.size() - 1);  // without the '\n'
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    auto sp = text.find(' ', start);
    fields.push_back(text.substr(start, sp == std::string_view::npos ? sp : sp - start));
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  // Empty fields first: two spaces in a row also change the count, and "empty" says why.
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].empty()) {
      return make_error("{}: field {} ({}) is empty (two spaces in a row, or a space at an end)",
                        where(file_name, line_no), i + 1,
                        i < std::size(kFieldNames) ? kFieldNames[i] : "extra");
    }
  }
  if (fields.size() != 7) {
    return make_error(
        "{}: has {} space-separated fields, statd writes 7 "
        "(addr prog vers proc priv mon_name my_name)",
        where(file_name, line_no), fields.size());
  }

  MonitorRecord r;
  std::uint32_t* numbers[4] = {&r.addr, &r.prog, &r.vers, &r.proc};
  for (std::size_t i = 0; i < 4; ++i) {
    auto v = parse_hex32(fields[i]);
    if (!v) {
      return make_error("{}: field {} ({}) '{}' {}", where(file_name, line_no), i + 1,
                        kFieldNames[i], printable(fields[i], 40), v.error().message);
    }
    *numbers[i] = *v;
  }
  auto priv = priv_from_hex(fields[4]);
  if (!priv) {
    return make_error("{}: field 5 (priv) {}", where(file_name, line_no), priv.error().message);
  }
  r.priv = *priv;
  if (auto ok = check_name("mon_name", fields[5]); !ok) {
    return make_error("{}: {}", where(file_name, line_no), ok.error().message);
  }
  if (auto ok = check_name("my_name", fields[6]); !ok) {
    return make_error("{}: {}", where(file_name, line_no), ok.error().message);
  }
  r.mon_name = std::string(fields[5]);
  r.my_name = std::string(fields[6]);
  r.file_name = std::string(file_name);
  r.raw = std::string(line);
  return r;
}

}  // namespace

std::string printable(std::string_view name, std::size_t max_bytes) {
  std::string out;
  for (std::size_t i = 0; i < name.size() && i < max_bytes; ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\' || c == '\'') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (name.size() > max_bytes) out += fmt::format("...({} bytes)", name.size());
  return out;
}

std::string priv_to_hex(const std::array<std::uint8_t, 16>& priv) { return text::to_hex(priv); }

Result<std::array<std::uint8_t, 16>> priv_from_hex(std::string_view hex) {
  if (hex.size() != 32) {
    return make_error("'{}' is {} characters, not the 32 hex digits of a 16-byte cookie",
                      printable(hex, 40), hex.size());
  }
  std::array<std::uint8_t, 16> out{};
  if (!text::from_hex(hex, out)) {
    return make_error("'{}' is not 32 lowercase hex digits as statd writes them",
                      printable(hex, 40));
  }
  return out;
}

Result<void> check_file_name(std::string_view name) {
  if (name == "." || name == "..") {
    return make_error("file name '{}' refers to a directory, not a record", name);
  }
  if (auto why = name_bytes_problem(name, kMaxFileNameBytes); !why.empty()) {
    return make_error("file name '{}' {}", printable(name), why);
  }
  return {};
}

Result<void> check_name(std::string_view what, std::string_view name) {
  if (auto why = name_bytes_problem(name, kMaxNameBytes); !why.empty()) {
    return make_error("{} '{}' {}", what, printable(name), why);
  }
  return {};
}

Result<std::string> file_name_for(std::string_view mon_name) {
  if (auto ok = check_name("mon_name", mon_name); !ok) return ok.error();
  if (auto ok = check_file_name(mon_name); !ok) return ok.error();
  return std::string(mon_name);
}

std::string format_record(const MonitorRecord& r) {
  return fmt::format("{:08x} {:08x} {:08x} {:08x} {} {} {}\n", r.addr, r.prog, r.vers, r.proc,
                     priv_to_hex(r.priv), r.mon_name, r.my_name);
}

std::string format_record_file(const std::vector<MonitorRecord>& records) {
  std::string out;
  for (const auto& r : records) out += format_record(r);
  return out;
}

std::string callback_address(const MonitorRecord& record) {
  in_addr a{};
  static_assert(sizeof(a.s_addr) == sizeof(record.addr));
  std::memcpy(&a.s_addr, &record.addr, sizeof(record.addr));
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

Result<void> check_record(const MonitorRecord& r) {
  if (auto ok = check_file_name(r.file_name); !ok) return ok;
  if (auto ok = check_name("mon_name", r.mon_name); !ok) return ok;
  if (auto ok = check_name("my_name", r.my_name); !ok) return ok;
  std::string line = format_record(r);
  if (line.size() > kMaxLineBytes) {
    return make_error("monitor record '{}': line would be {} bytes, more than the {} statd writes",
                      printable(r.file_name), line.size(), kMaxLineBytes);
  }
  if (!r.raw.empty() && r.raw != line) {
    return make_error("monitor record '{}': raw line '{}' does not match its fields '{}'",
                      printable(r.file_name), printable(r.raw, 200), printable(line, 200));
  }
  return {};
}

Result<std::vector<MonitorRecord>> parse_record_file(std::string_view file_name,
                                                     std::string_view content) {
  if (auto ok = check_file_name(file_name); !ok) {
    return make_error("monitor record: {}", ok.error().message);
  }
  const std::string name = printable(file_name);
  if (content.empty()) {
    return make_error(
        "monitor record '{}': file is empty (statd never writes an empty record; "
        "was it read while being created?)",
        name);
  }
  if (content.size() > kMaxFileBytes) {
    return make_error("monitor record '{}': file is {} bytes, more than the {} allowed", name,
                      content.size(), kMaxFileBytes);
  }
  if (auto nul = content.find('\0'); nul != std::string_view::npos) {
    return make_error("monitor record '{}': binary content (NUL byte at offset {})", name, nul);
  }
  if (auto bad = text::invalid_utf8_at(content); bad != std::string_view::npos) {
    return make_error("monitor record '{}': not valid UTF-8 text (byte {})", name, bad);
  }
  if (content.back() != '\n') {
    return make_error(
        "monitor record '{}': truncated (the last line has no newline; statd "
        "writes whole lines)",
        name);
  }

  std::vector<MonitorRecord> records;
  std::size_t start = 0;
  while (start < content.size()) {
    auto nl = content.find('\n', start);  // always found: content ends with '\n'
    std::string_view line = content.substr(start, nl - start + 1);
    const std::size_t line_no = records.size() + 1;
    if (line.size() > kMaxLineBytes) {
      return make_error("{}: {} bytes long, more than the {} statd writes",
                        where(file_name, line_no), line.size(), kMaxLineBytes);
    }
    auto r = parse_line(file_name, line_no, line);
    if (!r) return r.error();
    records.push_back(std::move(*r));
    start = nl + 1;
  }
  return records;
}

Result<MonitorRecord> parse_record(std::string_view file_name, std::string_view content) {
  auto records = parse_record_file(file_name, content);
  if (!records) return records.error();
  if (records->size() != 1) {
    return make_error(
        "monitor record '{}': holds {} records (one per mon_name/my_name pair "
        "statd maps to this file); read it with statmon::parse_record_file",
        printable(file_name), records->size());
  }
  return std::move(records->front());
}

}  // namespace lockferry::statmon
