// SPDX-License-Identifier: Apache-2.0
// Text from elsewhere shown to a person: escape sequences, new lines and invalid UTF-8 are
// escaped, printable text (UTF-8 included) is kept; the UTF-8 checks the store and statd record
// parsing share.
#include "common/text.h"

#include <gtest/gtest.h>

#include <string>

namespace lockferry::text {
namespace {

using namespace std::string_literals;

// No byte a terminal acts on: C0 controls, DEL, and (as UTF-8) C1.
bool has_raw_controls(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9f)
      return true;
  }
  return false;
}

TEST(DisplaySafe, TerminalEscapeSequencesBecomeVisibleText) {
  // Set the window title, clear the screen, print a fake verdict on a line of its own.
  const std::string hostile = "/export/a\x1b]0;pwned\x07\x1b[2J\x1b[H\nOK: all locks reclaimed\r";
  const std::string shown = display_safe(hostile);
  EXPECT_EQ(shown, "/export/a\\x1b]0;pwned\\x07\\x1b[2J\\x1b[H\\x0aOK: all locks reclaimed\\x0d");
  EXPECT_FALSE(has_raw_controls(shown));
  EXPECT_EQ(display_safe("tab\there\x7f"), "tab\\x09here\\x7f");
  EXPECT_EQ(display_safe("nul\0byte"s), "nul\\x00byte");
}

TEST(DisplaySafe, PrintableTextIsKeptAsItIs) {
  for (const std::string s : {"", "192.0.2.1", "/srv/export/file with spaces.dat",
                              "client-b.lockferry.test", "Grüße/日本語/😀", "back\\slash"}) {
    EXPECT_EQ(display_safe(s), s);
    EXPECT_TRUE(is_display_safe(s)) << s;
  }
}

TEST(DisplaySafe, InvalidUtf8AndHiddenCharactersAreEscaped) {
  // Latin-1, a lone continuation byte, an overlong '/', a surrogate, a truncated sequence.
  EXPECT_EQ(display_safe("caf\xe9"), "caf\\xe9");
  EXPECT_EQ(display_safe("\x80x"), "\\x80x");
  EXPECT_EQ(display_safe("\xc0\xaf"), "\\xc0\\xaf");
  EXPECT_EQ(display_safe("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(display_safe("ok\xe6\x97"), "ok\\xe6\\x97");
  // C1 CSI (U+009B), right-to-left override (U+202E), line separator (U+2028), zero width space.
  EXPECT_EQ(display_safe("a\xc2\x9b"
                         "2Jb"),
            "a\\u{009b}2Jb");
  EXPECT_EQ(display_safe("file\xe2\x80\xaetxt.exe"), "file\\u{202e}txt.exe");
  EXPECT_EQ(display_safe("x\xe2\x80\xa8y\xe2\x80\x8bz"), "x\\u{2028}y\\u{200b}z");
  EXPECT_FALSE(is_display_safe("a\xc2\x9b"));
  EXPECT_FALSE(
      has_raw_controls(display_safe("a\xc2\x9b"
                                    "b")));
}

TEST(DisplaySafe, EveryByteValueComesOutWithoutRawControls) {
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; b += 7) {
      const std::string s{static_cast<char>(a), static_cast<char>(b), 'x'};
      const std::string shown = display_safe(s);
      EXPECT_FALSE(has_raw_controls(shown)) << a << " " << b;
      EXPECT_EQ(invalid_utf8_at(shown), std::string::npos) << a << " " << b;
    }
}

TEST(Utf8, TheFirstInvalidByteIsFound) {
  EXPECT_EQ(invalid_utf8_at("plain"), std::string::npos);
  EXPECT_EQ(invalid_utf8_at("Grüße 😀"), std::string::npos);
  EXPECT_EQ(invalid_utf8_at("ab\xff"), 2u);
  EXPECT_EQ(invalid_utf8_at("\xe0\x80\x80"), 0u);       // overlong
  EXPECT_EQ(invalid_utf8_at("x\xf4\x90\x80\x80"), 1u);  // above U+10FFFF
  EXPECT_EQ(invalid_utf8_at("\xed\xbf\xbf"), 0u);       // surrogate
}

TEST(Utf8, ValidUtf8ReplacesBadBytesAndNul) {
  EXPECT_EQ(valid_utf8("ok"), "ok");
  EXPECT_EQ(valid_utf8("a\xff"
                       "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(valid_utf8("a\0b"s),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(valid_utf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(valid_utf8("日本"), "日本");
}

}  // namespace
}  // namespace lockferry::text
