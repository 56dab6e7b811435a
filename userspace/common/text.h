// SPDX-License-Identifier: Apache-2.0
// Text that came from somewhere else (file names, lock paths, NFS client names, command output,
// store documents): checking it is UTF-8, and making it safe to show a person on a terminal or
// in a log line. JSON output keeps the exact bytes; only text meant for a person is escaped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace lockferry::text {

// Offset of the first byte of `s` that does not start a valid UTF-8 sequence (overlong forms,
// surrogates and code points above U+10FFFF are invalid too), or npos when all of it is valid.
std::size_t invalid_utf8_at(std::string_view s);

// `s` with every byte that is not part of a valid UTF-8 sequence, and every NUL, replaced by
// U+FFFD (PostgreSQL text refuses both).
std::string valid_utf8(std::string_view s);

// `s` as a person may safely see it: every control character (C0 including tab and newline, DEL,
// C1), every Unicode character that reorders or hides text (bidirectional overrides and
// isolates, line and paragraph separators, zero-width characters) and every byte that is not
// valid UTF-8 is written as an escape: \xNN for a byte (ESC -> \x1b), \u{NNNN} for a character.
// Everything else, printable UTF-8 included, is kept. A terminal showing the result cannot be
// made to move the cursor, set its title, clear the screen or start a new line; a log line
// stays one line. Backslashes are kept as they are (the result is for reading, not parsing).
std::string display_safe(std::string_view s);

// Whether display_safe(s) == s (nothing to escape): the cheap test for the common case.
bool is_display_safe(std::string_view s);

// `bytes` as lowercase hex, two digits a byte (statd's priv cookie, key files, JSON).
std::string to_hex(std::span<const std::uint8_t> bytes);

// Fills `out` from `hex`: true only when `hex` is exactly two lowercase hex digits for each byte
// of `out` (the form to_hex writes and statd writes); `out` is unspecified otherwise.
bool from_hex(std::string_view hex, std::span<std::uint8_t> out);

// Replaces every `key` in `s` by `value`, left to right; text that `value` brings in is not
// searched again (a value holding the key cannot make it loop). For "{node}"-style placeholders
// in configured commands.
void substitute(std::string& s, std::string_view key, std::string_view value);

}  // namespace lockferry::text
