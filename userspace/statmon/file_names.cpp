// SPDX-License-Identifier: Apache-2.0
// statd's temp file names; see file_names.h.
#include "statmon/file_names.h"

namespace lockferry::statmon {
namespace {

constexpr std::string_view kOldTempSuffix = ".new";

}  // namespace

bool is_hidden_name(std::string_view name) { return name.empty() || name.front() == '.'; }

bool is_old_statd_temp_name(std::string_view name) {
  return name.size() > kOldTempSuffix.size() && name.ends_with(kOldTempSuffix);
}

bool is_statd_temp_name(std::string_view name) {
  return is_hidden_name(name) || is_old_statd_temp_name(name);
}

bool is_statd_temp_copy(std::string_view name, const std::string& first_mon_name) {
  return is_old_statd_temp_name(name) &&
         name.substr(0, name.size() - kOldTempSuffix.size()) == first_mon_name;
}

}  // namespace lockferry::statmon
