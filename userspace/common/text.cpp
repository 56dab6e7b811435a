// SPDX-License-Identifier: Apache-2.0
// UTF-8 checks and escaping for display; see text.h.
#include "common/text.h"

#include <fmt/format.h>

#include <cstdint>

namespace lockferry::text {
namespace {

constexpr std::size_t kInvalid = 0;

// Length of the valid UTF-8 sequence at s[i] (1..4) and its code point, or kInvalid.
std::size_t sequence_at(std::string_view s, std::size_t i, std::uint32_t& cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  std::size_t len = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return kInvalid;  // a continuation byte, 0xc0/0xc1 (always overlong) or 0xf5..0xff
  }
  if (i + len > s.size()) return kInvalid;
  for (std::size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return kInvalid;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return kInvalid;
  return len;
}

// Characters a terminal acts on, or that make displayed text read other than it is stored
// ("Trojan Source", CVE-2021-42574): reordering, invisible joiners, new lines.
bool is_hostile_char(std::uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||  // C0, DEL, C1 (8-bit CSI is 0x9b)
         cp == 0x061c ||                             // arabic letter mark
         (cp >= 0x200b && cp <= 0x200f) ||           // zero width space/joiners, LRM, RLM
         (cp >= 0x2028 && cp <= 0x202e) ||           // line/paragraph separator, embeddings
         (cp >= 0x2060 && cp <= 0x2069) ||           // word joiner, invisible operators, isolates
         cp == 0xfeff;                               // zero width no-break space (BOM)
}

}  // namespace

std::size_t invalid_utf8_at(std::string_view s) {
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = sequence_at(s, i, cp);
    if (len == kInvalid) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string valid_utf8(std::string_view s) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = s[i] == '\0' ? kInvalid : sequence_at(s, i, cp);
    if (len == kInvalid) {
      out += kReplacement;
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

bool is_display_safe(std::string_view s) {
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {  // the common case: printable ASCII
      ++i;
      continue;
    }
    const std::size_t len = sequence_at(s, i, cp);
    if (len == kInvalid || is_hostile_char(cp)) return false;
    i += len;
  }
  return true;
}

std::string display_safe(std::string_view s) {
  if (is_display_safe(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = sequence_at(s, i, cp);
    if (len == kInvalid) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(s[i]));
      ++i;
      continue;
    }
    if (is_hostile_char(cp)) {
      if (len == 1)
        out += fmt::format("\\x{:02x}", cp);
      else
        out += fmt::format("\\u{{{:04x}}}", cp);
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const std::uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

bool from_hex(std::string_view hex, std::span<std::uint8_t> out) {
  if (hex.size() != out.size() * 2) return false;
  const auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

void substitute(std::string& s, std::string_view key, std::string_view value) {
  if (key.empty()) return;
  for (auto pos = s.find(key); pos != std::string::npos; pos = s.find(key, pos + value.size()))
    s.replace(pos, key.size(), value);
}

}  // namespace lockferry::text
