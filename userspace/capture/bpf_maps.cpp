// SPDX-License-Identifier: Apache-2.0
// Ring buffer sizing and per-CPU counters; see bpf_maps.h.
#include "capture/bpf_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace lockferry::capture {

Result<std::uint32_t> ring_buffer_bytes(std::uint32_t kb, std::string_view what) {
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t bytes = std::max<std::uint64_t>(std::uint64_t{kb} * 1024, page);
  if ((bytes & (bytes - 1)) != 0 || bytes > (1u << 30))
    return make_error("{} ring buffer size {} KiB is not a power of two up to 1 GiB", what, kb);
  return static_cast<std::uint32_t>(bytes);
}

Result<std::uint32_t> size_ring_buffer(bpf_map* ring, std::uint32_t kb, std::string_view what) {
  auto bytes = ring_buffer_bytes(kb, what);
  if (!bytes) return bytes.error();
  if (int err = bpf_map__set_max_entries(ring, *bytes); err != 0)
    return make_errno_error(-err, "cannot size the {} ring buffer to {} bytes", what, *bytes);
  return *bytes;
}

void sum_per_cpu(const bpf_map* map, std::span<std::uint64_t> sums) {
  std::fill(sums.begin(), sums.end(), 0);
  if (!map) return;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return;
  std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(cpus));
  const int fd = bpf_map__fd(map);
  for (std::uint32_t i = 0; i < sums.size(); ++i) {
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0) continue;
    for (auto v : per_cpu) sums[i] += v;
  }
}

}  // namespace lockferry::capture
