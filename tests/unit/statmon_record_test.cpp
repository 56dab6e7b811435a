// SPDX-License-Identifier: Apache-2.0
// statmon::parse_record / format_record against what nfs-utils' rpc.statd writes, and every
// kind of bad input a monitor directory can hold.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "dir_store_test_util.h"
#include "statmon/record.h"

namespace lockferry::statmon {
namespace {

using ::testing::HasSubstr;

const std::string kPriv = "0123456789abcdef0011223344556677";
// What rpc.statd wrote on this machine for an NLM4 lock from 127.0.0.1 via Ganesha.
const std::string kSeenOnThisMachine =
    "0100007f 000186b5 00000004 00000010 " + kPriv + " 127.0.0.1 vm\n";

TEST(StatmonRecord, ParsesTheRecordStatdWroteOnThisMachine) {
  auto r = parse_record("127.0.0.1", kSeenOnThisMachine);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->addr, 0x0100007fu);
  EXPECT_EQ(callback_address(*r), "127.0.0.1");
  EXPECT_EQ(r->prog, 100021u);  // NLM
  EXPECT_EQ(r->vers, 4u);
  EXPECT_EQ(r->proc, 16u);
  EXPECT_EQ(priv_to_hex(r->priv), kPriv);
  EXPECT_EQ(r->priv[0], 0x01);
  EXPECT_EQ(r->priv[15], 0x77);
  EXPECT_EQ(r->mon_name, "127.0.0.1");
  EXPECT_EQ(r->my_name, "vm");
  EXPECT_EQ(r->file_name, "127.0.0.1");
  EXPECT_EQ(r->raw, kSeenOnThisMachine);
  EXPECT_EQ(format_record(*r), kSeenOnThisMachine);
}

TEST(StatmonRecord, FormatsARecordBuiltFromFieldsExactlyAsStatdDoes) {
  MonitorRecord r;
  r.addr = 0x0100007f;
  r.prog = 100021;
  r.vers = 4;
  r.proc = 24;
  r.priv = {0xde, 0xad, 0xbe, 0xef};
  r.mon_name = "client.example.com";
  r.my_name = "server1";
  EXPECT_EQ(format_record(r),
            "0100007f 000186b5 00000004 00000018 deadbeef000000000000000000000000 "
            "client.example.com server1\n");
}

// monitor.c passes statd's own loopback as the callback address whatever the peer's family,
// so an IPv6 peer shows only in mon_name and the file name.
TEST(StatmonRecord, RoundTripsAnIpv6PeerWhoseAddressFieldIsStillStatdsLoopback) {
  for (std::string peer : {"fd00::2", "2001:db8::1:0:0:1", "fe80::1%eth0", "::ffff:192.0.2.7"}) {
    const std::string line =
        "0100007f 000186b5 00000004 00000010 " + kPriv + " " + peer + " nfs1\n";
    auto file = file_name_for(peer);
    ASSERT_TRUE(file.ok()) << file.error().message;
    EXPECT_EQ(*file, peer);
    auto r = parse_record(*file, line);
    ASSERT_TRUE(r.ok()) << peer << ": " << r.error().message;
    EXPECT_EQ(r->mon_name, peer);
    EXPECT_EQ(callback_address(*r), "127.0.0.1");
    EXPECT_EQ(format_record(*r), line);
  }
}

TEST(StatmonRecord, RoundTripsExtremeButValidValues) {
  const std::string line =
      "ffffffff 00000000 ffffffff 00000000 ffffffffffffffffffffffffffffffff "
      "caf\xc3\xa9.example " +
      std::string(900, 'm') + "\n";
  auto r = parse_record("caf\xc3\xa9.example", line);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->addr, 0xffffffffu);
  EXPECT_EQ(format_record(*r), line);
}

// statd appends a line when another (mon_name, my_name) pair maps to the same file, and reads
// every line back (nsm_insert_monitored_host, nsm_load_host).
TEST(StatmonRecord, ParsesEveryLineOfAFileHoldingSeveralRecords) {
  const std::string content =
      "0100007f 000186b5 00000004 00000010 " + kPriv +
      " 10.0.0.5 server1\n"
      "0100007f 000186b5 00000004 00000010 ffeeddccbbaa99887766554433221100 10.0.1.5 server1\n";
  auto records = parse_record_file("client.example.com", content);
  ASSERT_TRUE(records.ok()) << records.error().message;
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].mon_name, "10.0.0.5");
  EXPECT_EQ((*records)[1].mon_name, "10.0.1.5");
  EXPECT_EQ((*records)[1].file_name, "client.example.com");
  EXPECT_EQ(format_record_file(*records), content);
  EXPECT_EQ((*records)[0].raw + (*records)[1].raw, content);

  auto single = parse_record("client.example.com", content);
  ASSERT_FALSE(single.ok());
  EXPECT_THAT(single.error().message, HasSubstr("holds 2 records"));
  EXPECT_THAT(single.error().message, HasSubstr("parse_record_file"));
}

// Real statd files are added to tests/data/statd/ (name = <file name>.record); each must
// parse and format back to the same bytes.
TEST(StatmonRecord, RoundTripsEveryStatdWrittenFileInTestData) {
  const std::filesystem::path dir = std::filesystem::path(LOCKFERRY_TEST_DATA) / "statd";
  int seen = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".record") continue;
    ++seen;
    const std::string content = lockferry::testing::read_raw_file(entry.path().string());
    auto records = parse_record_file(entry.path().stem().string(), content);
    ASSERT_TRUE(records.ok()) << entry.path() << ": " << records.error().message;
    EXPECT_EQ(format_record_file(*records), content) << entry.path();
  }
  if (seen == 0) GTEST_SKIP() << "no statd-written *.record files in " << dir << " yet";
}

struct BadInput {
  const char* what;
  std::string content;
  const char* expected;  // part of the error message
};

std::vector<BadInput> bad_inputs() {
  const std::string head = "0100007f 000186b5 00000004 00000010 ";
  const std::string good = head + kPriv + " client server\n";
  return {
      {"empty file", "", "empty"},
      {"no newline", good.substr(0, good.size() - 1), "truncated"},
      {"cut in the middle", good.substr(0, 20) + "\n", "fields"},
      {"over 4 KiB", std::string(4097, 'a'), "4096"},
      {"line longer than statd writes", head + kPriv + " c " + std::string(1100, 's') + "\n",
       "1095"},
      {"NUL byte", head + kPriv + std::string(" cli\0ent server\n", 16), "NUL"},
      {"binary garbage",
       std::string("\x7f"
                   "ELF\x02\x01\x01\x00\x00",
                   9) +
           "\n",
       "NUL"},
      {"six fields", head + kPriv + " client\n", "6 space-separated fields"},
      {"eight fields", head + kPriv + " client server extra\n", "8 space-separated fields"},
      {"blank line", good + "\n", "line 2"},
      {"double space", head + kPriv + "  client server\n", "empty"},
      {"trailing space", head + kPriv + " client server \n", "empty"},
      {"non-hex addr", "0100007g 000186b5 00000004 00000010 " + kPriv + " c s\n", "addr"},
      {"upper-case hex", "0100007F 000186b5 00000004 00000010 " + kPriv + " c s\n", "lowercase"},
      {"short hex", "100007f 000186b5 00000004 00000010 " + kPriv + " c s\n", "not 8"},
      {"0x prefix", "0x0100007f 000186b5 00000004 00000010 " + kPriv + " c s\n", "not 8"},
      {"short priv", head + kPriv.substr(2) + " c s\n", "32 hex"},
      {"non-hex priv", head + std::string(31, 'a') + "z c s\n", "32 lowercase hex"},
      {"slash in mon_name", head + kPriv + " ../../etc/passwd s\n", "'/'"},
      {"dot-dot mon_name", head + kPriv + " .. s\n", "starts with '.'"},
      {"leading dot my_name", head + kPriv + " c .hidden\n", "starts with '.'"},
      {"control char", head + kPriv + " c s\x01x\n", "control character"},
      {"tab", head + kPriv + " c s\tx\n", "white space"},
      {"CRLF line end", head + kPriv + " c s\r\n", "white space"},
      {"escape sequence", head + kPriv + " c \x1b[2Jx\n", "control character"},
      {"not UTF-8", head + kPriv + " caf\xe9 s\n", "UTF-8"},
      {"overlong UTF-8 slash",
       head + kPriv +
           " a\xc0\xaf"
           "b s\n",
       "UTF-8"},
      {"UTF-16 surrogate", head + kPriv + " a\xed\xa0\x80 s\n", "UTF-8"},
      {"second line bad", good + head + "zz c s\n", "line 2"},
  };
}

TEST(StatmonRecord, RefusesEveryKindOfBadInputNamingTheFileAndTheProblem) {
  for (const auto& bad : bad_inputs()) {
    auto r = parse_record_file("peer.example", bad.content);
    ASSERT_FALSE(r.ok()) << bad.what << " was accepted";
    EXPECT_THAT(r.error().message, HasSubstr("peer.example")) << bad.what;
    EXPECT_THAT(r.error().message, HasSubstr(bad.expected)) << bad.what;
    EXPECT_FALSE(parse_record("peer.example", bad.content).ok()) << bad.what;
  }
}

// tests/data/statmon/*.record: bad files kept as real bytes on disk (NUL, CRLF, Latin-1, ...).
TEST(StatmonRecord, RefusesEveryBadSampleFileInTestData) {
  const std::filesystem::path dir = std::filesystem::path(LOCKFERRY_TEST_DATA) / "statmon";
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".record") continue;
    ++seen;
    const std::string content = lockferry::testing::read_raw_file(entry.path().string());
    auto r = parse_record_file("sample-host", content);
    ASSERT_FALSE(r.ok()) << entry.path() << " was accepted";
    EXPECT_THAT(r.error().message, HasSubstr("sample-host")) << entry.path();
  }
  EXPECT_GE(seen, 5) << "bad samples missing from " << dir;
}

TEST(StatmonRecord, ErrorsShowHostileFileNamesEscaped) {
  auto r = parse_record_file("evil\nINFO forged log line", kSeenOnThisMachine);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("evil\\x0aINFO"));
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
}

TEST(StatmonFileName, RefusesNamesThatEscapeOrConfuseTheMonitorDirectory) {
  const std::vector<std::string> hostile = {
      "",
      ".",
      "..",
      "../x",
      "../../etc/shadow",
      "/etc/passwd",
      "a/b",
      "a\nb",
      "a b",
      "a\tb",
      "a\rb",
      std::string("a\0b", 3),
      std::string(4096, 'x'),
      std::string(256, 'x'),
      ".hidden",
      ".client.new",  // statd's own temp file
      "a\x7f",
      "a\x1b[31m",
      "caf\xe9",
  };
  for (const auto& name : hostile) {
    EXPECT_FALSE(check_file_name(name).ok()) << printable(name) << " was accepted";
    EXPECT_FALSE(file_name_for(name).ok()) << printable(name) << " was accepted";
  }
}

TEST(StatmonFileName, AcceptsWhatStatdNamesItsFiles) {
  for (std::string name : {"client1", "client.example.com", "10.0.0.5", "fd00::2", "fe80::1%eth0",
                           "caf\xc3\xa9", "a..b", "x-y_z"}) {
    EXPECT_TRUE(check_file_name(name).ok()) << name;
    auto file = file_name_for(name);
    ASSERT_TRUE(file.ok()) << name;
    EXPECT_EQ(*file, name);
  }
  EXPECT_TRUE(check_file_name(std::string(255, 'x')).ok());
}

TEST(StatmonRecord, CheckRecordRefusesARawLineThatDisagreesWithItsFields) {
  auto r = parse_record("127.0.0.1", kSeenOnThisMachine);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(check_record(*r).ok());
  r->my_name = "other";
  auto ok = check_record(*r);
  ASSERT_FALSE(ok.ok());
  EXPECT_THAT(ok.error().message, HasSubstr("does not match"));
  r->raw.clear();
  EXPECT_TRUE(check_record(*r).ok());
  r->mon_name = "a/b";
  EXPECT_FALSE(check_record(*r).ok());
}

TEST(StatmonRecord, PrivHexRoundTripsAndRefusesBadCookies) {
  auto priv = priv_from_hex(kPriv);
  ASSERT_TRUE(priv.ok());
  EXPECT_EQ(priv_to_hex(*priv), kPriv);
  EXPECT_FALSE(priv_from_hex("00").ok());
  EXPECT_FALSE(priv_from_hex(std::string(32, 'G')).ok());
}

}  // namespace
}  // namespace lockferry::statmon
