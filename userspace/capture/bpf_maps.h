// SPDX-License-Identifier: Apache-2.0
// Map plumbing every BPF loader of lockferry needs once: sizing a ring buffer before load, and
// reading a per-CPU array of counters (the objects' stats, indexes in lockferry/events.h).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "lockferry/result.h"

struct bpf_map;

namespace lockferry::capture {

// The ring buffer's size in bytes for `kb` KiB: a power-of-two multiple of the page size
// (kernel/bpf/ringbuf.c), rounded up to one page, at most 1 GiB. `what` names it in the error
// ("capture", "lock").
Result<std::uint32_t> ring_buffer_bytes(std::uint32_t kb, std::string_view what);

// Sizes ring buffer map `ring` to `kb` KiB (before load); returns the size in bytes.
Result<std::uint32_t> size_ring_buffer(bpf_map* ring, std::uint32_t kb, std::string_view what);

// Sums each index of per-CPU array `map` over the CPUs into `sums` (one slot per index); an index
// that cannot be read stays 0. Nothing is read when `map` is null (a stopped capture).
void sum_per_cpu(const bpf_map* map, std::span<std::uint64_t> sums);

template <std::size_t N>
std::array<std::uint64_t, N> sum_per_cpu(const bpf_map* map) {
  std::array<std::uint64_t, N> sums{};
  sum_per_cpu(map, sums);
  return sums;
}

}  // namespace lockferry::capture
