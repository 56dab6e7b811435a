// SPDX-License-Identifier: Apache-2.0
// The object-independent half of the BPF loader; see bpf_loader.h.
#include "capture/bpf_loader.h"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace lockferry::capture {
namespace {

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  std::array<char, 2048> buf{};
  std::vsnprintf(buf.data(), buf.size(), format, args);
  std::string_view text(buf.data());
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  spdlog::debug("libbpf{}: {}", level == LIBBPF_WARN ? " warning" : "", text);
  return 0;
}

}  // namespace

void route_libbpf_logs() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(libbpf_print); });
}

BpfLoaderBase::BpfLoaderBase(boost::asio::io_context& io, std::string_view object,
                             std::string log_prefix)
    : object_(object), log_prefix_(log_prefix), ring_(io, std::move(log_prefix)) {}

std::string BpfLoaderBase::pin(const std::string& dir) {
  if (dir.empty() || !obj_) return {};
  if (auto r = pins_.pin(dir, obj_); !r) {
    spdlog::warn("{}: not pinning BPF objects: {}", log_prefix_, r.error().message);
    return ", not pinned: " + r.error().message;
  }
  return ", pinned under " + pins_.dir();
}

Result<void> BpfLoaderBase::choose(bpf_object* obj, std::string_view variant,
                                   const std::string& tracefs) {
  auto choices = choose_programs(obj, object_, variant, tracefs);
  if (!choices) return choices.error();
  programs_ = 0;
  for (const auto& c : *choices) {
    if (c.load) {
      ++programs_;
      spdlog::debug("{}: program {} loads: {}", log_prefix_, c.program, c.reason);
    } else if (c.hook_missing) {
      spdlog::info("{}: {}, its program {} stays unloaded", log_prefix_, c.reason, c.program);
    } else {
      spdlog::debug("{}: program {} stays unloaded: {}", log_prefix_, c.program, c.reason);
    }
  }
  return {};
}

std::string BpfLoaderBase::label(std::string_view variant) {
  return variant.empty() ? std::string() : fmt::format(" ({})", variant);
}

void BpfLoaderBase::note_failure(std::string_view variant, const std::string& why) {
  spdlog::warn("{}: {} hooks unavailable: {}", log_prefix_, variant, why);
  tried_ += fmt::format("{}{} unavailable: {}", tried_.empty() ? "" : "; ", variant, why);
}

void BpfLoaderBase::note_choice(std::string_view variant, std::size_t candidates) {
  variant_ = variant;
  if (variant.empty()) return;  // one way to load: nothing was chosen
  spdlog::info("{}: {} hooks chosen for {}: {}", log_prefix_, variant, object_,
               candidates == 1  ? std::string("the only variant asked for")
               : tried_.empty() ? std::string("the first variant, and it loaded")
                                : "the first that loaded (" + tried_ + ")");
}

Result<void> BpfLoaderBase::no_variant_loaded() const {
  return make_error("no variant of {} could be loaded ({})", object_, tried_);
}

}  // namespace lockferry::capture
