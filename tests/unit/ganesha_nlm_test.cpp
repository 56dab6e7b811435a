// SPDX-License-Identifier: Apache-2.0
// Finding NFS-Ganesha's NLM handlers through its NLM4 dispatch table (capture/ganesha_nlm.h): in
// a small ELF image built here (the table's layout as nfs_worker_thread.c defines it), and in
// the libganesha_nfsd.so installed on this machine when there is one.
#include "capture/ganesha_nlm.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace lockferry::capture {
namespace {

// A shared object with a read-only segment (strings, the table) and a code segment, and the
// table's pointers as RELATIVE relocations, like a real build's .rela.dyn.
class FakeLibrary {
 public:
  static constexpr std::uint64_t kData = 0x1000;  // vaddr == file offset of the data segment
  static constexpr std::uint64_t kCode = 0x2000;  // ... and of the code segment
  static constexpr std::uint64_t kSize = 0x3000;

  FakeLibrary() : bytes_(kSize) {}

  // A string at `off` in the data segment; returns its address.
  std::uint64_t string(std::uint64_t off, const std::string& s) {
    std::memcpy(&bytes_[kData + off], s.c_str(), s.size() + 1);
    return kData + off;
  }
  // A nfs_function_desc_t at `off` in the data segment: four function pointers, then funcname.
  void descriptor(std::uint64_t off, std::uint64_t service, std::uint64_t funcname,
                  std::uint64_t other = kCode + 0x800) {
    const std::uint64_t slot = kData + off;
    relocs_.push_back({slot, service});
    for (int i = 1; i < 4; ++i) relocs_.push_back({slot + 8 * i, other});
    relocs_.push_back({slot + 32, funcname});
  }
  std::vector<std::byte> build() {
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_machine = EM_X86_64;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 2;
    const std::uint64_t rela = 0x400;
    eh.e_shoff = rela + relocs_.size() * sizeof(Elf64_Rela);
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = 1;
    std::memcpy(&bytes_[0], &eh, sizeof(eh));
    const Elf64_Phdr data{PT_LOAD, PF_R, kData, kData, kData, 0x1000, 0x1000, 0x1000};
    const Elf64_Phdr code{PT_LOAD, PF_R | PF_X, kCode, kCode, kCode, 0x1000, 0x1000, 0x1000};
    std::memcpy(&bytes_[eh.e_phoff], &data, sizeof(data));
    std::memcpy(&bytes_[eh.e_phoff + sizeof(data)], &code, sizeof(code));
    for (std::size_t i = 0; i < relocs_.size(); ++i) {
      const Elf64_Rela r{relocs_[i].first, ELF64_R_INFO(0, R_X86_64_RELATIVE),
                         static_cast<Elf64_Sxword>(relocs_[i].second)};
      std::memcpy(&bytes_[rela + i * sizeof(r)], &r, sizeof(r));
    }
    Elf64_Shdr sh{};
    sh.sh_type = SHT_RELA;
    sh.sh_offset = rela;
    sh.sh_size = relocs_.size() * sizeof(Elf64_Rela);
    sh.sh_entsize = sizeof(Elf64_Rela);
    std::memcpy(&bytes_[eh.e_shoff], &sh, sizeof(sh));
    return bytes_;
  }

 private:
  std::vector<std::byte> bytes_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> relocs_;
};

TEST(GaneshaNlm, FindsTheHandlersThroughTheDispatchTable) {
  FakeLibrary lib;
  const auto lock = lib.string(0x10, "NLM4_LOCK");
  const auto nm_lock = lib.string(0x20, "NLM4_NM_LOCK");
  // Linkers merge string tails: the funcname may be the end of a longer message.
  const auto unlock = lib.string(0x30, "INVALID HANDLE: NLM4_UNLOCK") + 16;
  lib.descriptor(0x100, FakeLibrary::kCode + 0x10, lock);
  lib.descriptor(0x130, FakeLibrary::kCode + 0x10, nm_lock);  // the same handler: listed once
  lib.descriptor(0x160, FakeLibrary::kCode + 0x40, unlock);
  const auto bytes = lib.build();
  auto handlers = find_nlm_handlers(bytes);
  ASSERT_TRUE(handlers) << handlers.error().message;
  const std::vector<NlmHandler> want = {
      {"NLM4_LOCK", FakeLibrary::kCode + 0x10, NlmArgs::lockargs},
      {"NLM4_UNLOCK", FakeLibrary::kCode + 0x40, NlmArgs::unlockargs},
  };
  EXPECT_EQ(*handlers, want);
}

TEST(GaneshaNlm, IgnoresPointersToTheNameThatAreNoDescriptor) {
  FakeLibrary lib;
  const auto lock = lib.string(0x10, "NLM4_LOCK");
  // A pointer to the name whose neighbours are data, not functions: e.g. a log string table.
  lib.descriptor(0x100, FakeLibrary::kData + 0x10, lock, FakeLibrary::kData);
  const auto bytes = lib.build();
  auto handlers = find_nlm_handlers(bytes);
  ASSERT_FALSE(handlers);
  EXPECT_NE(handlers.error().message.find("NLM4_LOCK"), std::string::npos);
}

TEST(GaneshaNlm, RefusesWhatIsNotAnElfSharedObject) {
  const std::string text = "not an ELF file at all";
  EXPECT_FALSE(find_nlm_handlers(std::as_bytes(std::span(text))));
  EXPECT_FALSE(find_nlm_handlers_in("/nonexistent/libganesha_nfsd.so"));
  EXPECT_FALSE(find_ganesha_library({"/nonexistent/a.so", "/nonexistent/b.so"}));
}

// The real thing, where NFS-Ganesha is installed (the e2e tests need it anyway).
TEST(GaneshaNlm, FindsTheHandlersOfTheInstalledGanesha) {
  auto lib = find_ganesha_library(kGaneshaLibraryPaths);
  if (!lib) GTEST_SKIP() << lib.error().message;
  auto handlers = find_nlm_handlers_in(*lib);
  ASSERT_TRUE(handlers) << handlers.error().message;
  bool lock = false, unlock = false;
  for (const auto& h : *handlers) {
    lock |= h.funcname == "NLM4_LOCK" && h.args == NlmArgs::lockargs;
    unlock |= h.funcname == "NLM4_UNLOCK" && h.args == NlmArgs::unlockargs;
  }
  EXPECT_TRUE(lock);
  EXPECT_TRUE(unlock);
}

}  // namespace
}  // namespace lockferry::capture
