// SPDX-License-Identifier: Apache-2.0
// The BPF loader's kernel-free parts against the objects as built: the one program table
// (capture/bpf_programs.h) names every program of each object and nothing else, pin names stay
// unique, ring buffer sizes are what the kernel takes, and the kernel values events.h defines
// for both sides match the system headers they are copied from.
#include "capture/bpf_programs.h"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "capture/bpf_maps.h"
#include "lock_watch.skel.h"
#include "lockferry/events.h"
#include "statmon_watch.skel.h"

namespace lockferry::capture {
namespace {

// The values that cross the ring buffer, checked against the kernel's UAPI (compile time).
static_assert(LF_O_WRONLY == O_WRONLY && LF_O_CREAT == O_CREAT && LF_O_EXCL == O_EXCL &&
              LF_O_TRUNC == O_TRUNC);
static_assert(LF_RENAME_NOREPLACE == RENAME_NOREPLACE && LF_RENAME_EXCHANGE == RENAME_EXCHANGE &&
              LF_RENAME_WHITEOUT == RENAME_WHITEOUT);
static_assert(LF_F_RDLCK == F_RDLCK && LF_F_WRLCK == F_WRLCK && LF_F_UNLCK == F_UNLCK);
static_assert(LF_OFFSET_MAX == INT64_MAX);

struct Object {
  std::string name;
  std::vector<std::string> programs;  // program (function) names
  std::vector<std::string> short_names;
};

// The programs of each object, from its skeleton opened (not loaded: no kernel needed).
template <typename Skel>
Object programs_of(const char* name, Skel* (*open)(), void (*destroy)(Skel*)) {
  Object out{name, {}, {}};
  Skel* skel = open();
  if (!skel) return out;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel->obj) {
    out.programs.emplace_back(bpf_program__name(prog));
    out.short_names.push_back(program_short_name(prog));
  }
  destroy(skel);
  return out;
}

std::vector<Object> objects() {
  return {programs_of("statmon_watch", &statmon_watch__open, &statmon_watch__destroy),
          programs_of("lock_watch", &lock_watch__open, &lock_watch__destroy)};
}

TEST(BpfProgramTable, EveryProgramOfEachObjectHasARow) {
  for (const auto& object : objects()) {
    ASSERT_FALSE(object.programs.empty()) << object.name << " did not open";
    for (const auto& program : object.programs)
      EXPECT_NE(program_row(object.name, program), nullptr) << object.name << ": " << program;
  }
}

TEST(BpfProgramTable, EveryNamedRowIsAProgramOfItsObject) {
  std::map<std::string, std::set<std::string>> programs;
  for (const auto& object : objects())
    programs[object.name].insert(object.programs.begin(), object.programs.end());
  for (const auto& row : program_table()) {
    ASSERT_TRUE(programs.contains(std::string(row.object))) << row.object;
    if (row.program == "*") continue;
    EXPECT_TRUE(programs[std::string(row.object)].contains(std::string(row.program)))
        << row.object << ": " << row.program << " is in the table but not in the object";
  }
}

// Programs are pinned under their short name: two that load together must not share one.
TEST(BpfProgramTable, ShortNamesAreUniqueWithinEachVariant) {
  for (const auto& object : objects()) {
    std::set<std::string> variants{""};
    for (const auto& row : program_table())
      if (row.object == object.name) variants.insert(std::string(row.variant));
    for (const auto& variant : variants) {
      std::set<std::string> seen;
      for (std::size_t i = 0; i < object.programs.size(); ++i) {
        const ProgramRow* row = program_row(object.name, object.programs[i]);
        if (!row || (!row->variant.empty() && row->variant != variant)) continue;
        EXPECT_TRUE(seen.insert(object.short_names[i]).second)
            << object.name << " (" << variant << "): two programs pin as " << object.short_names[i];
      }
    }
  }
}

// The syscall tracepoint's name, or for a function-level hook enter_/exit_ and the function (the
// fentry and kprobe sets pin their programs under the same names: only one set loads).
TEST(BpfProgramTable, ShortNameIsTheHookName) {
  const auto statmon = objects()[0];
  for (std::size_t i = 0; i < statmon.programs.size(); ++i) {
    const std::string& short_name = statmon.short_names[i];
    const std::string& program = statmon.programs[i];
    if (program.starts_with("tracepoint__"))
      EXPECT_EQ("tracepoint__syscalls__" + short_name, program);
    else if (short_name.starts_with("enter_"))
      EXPECT_TRUE(program == "fentry__" + short_name || program == "kprobe__" + short_name)
          << program;
    else
      EXPECT_TRUE(program == "fexit__" + short_name || program == "kretprobe__" + short_name)
          << program;
  }
}

TEST(RingBufferBytes, TakesPowerOfTwoPagesAndRoundsUpToAPage) {
  const auto page = static_cast<std::uint32_t>(::sysconf(_SC_PAGESIZE));
  EXPECT_EQ(ring_buffer_bytes(1, "test").value(), page);
  EXPECT_EQ(ring_buffer_bytes(1024, "test").value(), 1024u * 1024);
  auto bad = ring_buffer_bytes(3000, "capture");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "capture ring buffer size 3000 KiB is not a power of two up to 1 GiB");
  EXPECT_FALSE(ring_buffer_bytes(2u * 1024 * 1024, "test")) << "2 GiB is over the limit";
}

}  // namespace
}  // namespace lockferry::capture
