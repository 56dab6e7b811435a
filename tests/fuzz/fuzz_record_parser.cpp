// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes as a statd monitor record file (statmon::parse_record_file)
// and as a client/file name. Beyond "no crash": whatever is accepted formats back to the same
// bytes, and no accepted name can leave the monitor directory.
#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "statmon/record.h"

using namespace lockferry;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

namespace {

void check_accepted_name(std::string_view name, std::size_t max_bytes) {
  LF_FUZZ_CHECK(!name.empty() && name.size() <= max_bytes, "accepted name of %zu bytes",
                name.size());
  LF_FUZZ_CHECK(name.find('/') == std::string_view::npos, "accepted a name with '/'");
  LF_FUZZ_CHECK(name.find('\0') == std::string_view::npos, "accepted a name with NUL");
  LF_FUZZ_CHECK(name.find('\n') == std::string_view::npos, "accepted a name with a newline");
  LF_FUZZ_CHECK(name.front() != '.', "accepted a name starting with '.' (., .., hidden, temp)");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  // The bytes as the content of a record file.
  auto records = statmon::parse_record_file("client.example", in);
  if (records) {
    LF_FUZZ_CHECK(!records->empty(), "an accepted file holds no record");
    LF_FUZZ_CHECK(statmon::format_record_file(*records) == in,
                  "accepted content does not format back to the same bytes");
    for (const auto& r : *records) {
      auto ok = statmon::check_record(r);
      LF_FUZZ_CHECK(ok.ok(), "parsed record fails check_record: %s", ok.error().message.c_str());
      LF_FUZZ_CHECK(r.raw == statmon::format_record(r), "raw line differs from its fields");
      check_accepted_name(r.mon_name, statmon::kMaxNameBytes);
      check_accepted_name(r.my_name, statmon::kMaxNameBytes);
    }
    auto single = statmon::parse_record(std::string("client.example"), in);
    LF_FUZZ_CHECK(single.ok() == (records->size() == 1),
                  "parse_record disagrees with parse_record_file");
  } else {
    LF_FUZZ_CHECK(!records.error().message.empty(), "a refusal without a message");
  }

  // The bytes as a file name: accepted names stay inside the monitor directory.
  if (statmon::check_file_name(in).ok()) check_accepted_name(in, statmon::kMaxFileNameBytes);
  if (auto name = statmon::file_name_for(in); name.ok()) {
    check_accepted_name(*name, statmon::kMaxFileNameBytes);
    // And a file of that name parses with any good record in it.
    auto line = statmon::parse_record_file(
        *name,
        "0100007f 000186b5 00000004 00000010 00000000000000000000000000000000 " + *name + " vm\n");
    LF_FUZZ_CHECK(line.ok(), "a name file_name_for accepts cannot name a record: %s",
                  line.error().message.c_str());
  }

  // Log-safe form: printable ASCII only, so a hostile name cannot forge log lines.
  for (char c : statmon::printable(in, 300)) {
    LF_FUZZ_CHECK(c >= 0x20 && c < 0x7f, "printable() let byte 0x%02x through", c & 0xff);
  }

  // The priv cookie: whatever priv_from_hex accepts prints back the same.
  if (size >= 32) {
    auto priv = statmon::priv_from_hex(in.substr(0, 32));
    if (priv) LF_FUZZ_CHECK(statmon::priv_to_hex(*priv) == in.substr(0, 32), "priv round trip");
  }
  return 0;
}
