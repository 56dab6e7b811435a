// SPDX-License-Identifier: Apache-2.0
// The counter tables' renderers: status JSON, CLI rows, Prometheus families; see counters.h.
#include "common/counters.h"

#include <fmt/format.h>

namespace lockferry::counters {
namespace {

std::string_view type_name(Kind kind) { return kind == Kind::counter ? "counter" : "gauge"; }

// The value Prometheus wants: seconds where the status JSON has ms or us.
double in_base_unit(std::uint64_t value, Unit unit) {
  switch (unit) {
    case Unit::milliseconds:
      return static_cast<double>(value) / 1e3;
    case Unit::microseconds:
      return static_cast<double>(value) / 1e6;
    case Unit::none:
      break;
  }
  return static_cast<double>(value);
}

}  // namespace

void add_json(nlohmann::json& into, const Group& group, const Values& values) {
  for (std::size_t i = 0; i < group.counters.size() && i < values.size(); ++i)
    into[std::string(group.counters[i].name)] = values[i];
}

nlohmann::json to_json(const Group& group, const Values& values) {
  nlohmann::json out = nlohmann::json::object();
  add_json(out, group, values);
  return out;
}

std::string row(const Group& group, const nlohmann::json& object) {
  std::vector<std::string> parts;
  for (const auto& c : group.counters) {
    if (c.shown.empty()) continue;
    auto it = object.find(std::string(c.name));
    if (it == object.end() || !it->is_number()) continue;
    parts.push_back(fmt::format("{} {}", it->dump(), c.shown));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string metric_name(const Group& group, const Counter& counter) {
  return fmt::format("lockferry_{}{}",
                     counter.metric.empty() ? fmt::format("{}{}", group.prefix, counter.name)
                                            : std::string(counter.metric),
                     counter.kind == Kind::counter ? "_total" : "");
}

void Exposition::group(const Group& group, const Values& values) {
  if (!group.label.empty()) {
    const std::string family = fmt::format("lockferry_{}total", group.prefix);
    this->family(family, "counter", group.help);
    for (std::size_t i = 0; i < group.counters.size() && i < values.size(); ++i)
      sample(family, fmt::format("{}=\"{}\"", group.label, label_value(group.counters[i].name)),
             values[i]);
    return;
  }
  for (std::size_t i = 0; i < group.counters.size() && i < values.size(); ++i) {
    const Counter& c = group.counters[i];
    const std::string name = metric_name(group, c);
    family(name, type_name(c.kind), c.help);
    if (c.unit == Unit::none)
      sample(name, {}, values[i]);
    else
      sample(name, {}, in_base_unit(values[i], c.unit));
  }
}

std::string label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace lockferry::counters
