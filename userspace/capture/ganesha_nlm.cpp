// SPDX-License-Identifier: Apache-2.0
// Finding NFS-Ganesha's NLM handlers through its dispatch table, and the uprobes on them; see
// ganesha_nlm.h.
#include "capture/ganesha_nlm.h"

#include <bpf/libbpf.h>
#include <elf.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string_view>

namespace lockferry::capture {
namespace {

// The procedures whose handlers take or drop locks, and the argument struct each gets. The
// asynchronous ones (NLM4_LOCK_MSG, NLM4_UNLOCK_MSG) call these handlers (nlm_Lock.c,
// nlm_Unlock.c; not inlined in Debian's 4.3), and NLM4_NM_LOCK is nlm4_Lock itself; CANCEL takes
// no lock. Each handler costs two perf event descriptors (entry and return probe), so no more.
struct Procedure {
  std::string_view funcname;
  NlmArgs args;
};
constexpr Procedure kProcedures[] = {
    {"NLM4_LOCK", NlmArgs::lockargs},
    {"NLM4_NM_LOCK", NlmArgs::lockargs},
    {"NLM4_UNLOCK", NlmArgs::unlockargs},
};

// nfs_function_desc_t: service_function, free_function, xdr_decode_func, xdr_encode_func come
// before funcname, each a pointer.
constexpr std::uint64_t kFuncnameSlot = 4 * sizeof(std::uint64_t);
constexpr std::size_t kMaxLibraryBytes = 256u << 20;

template <typename T>
bool read_at(std::span<const std::byte> elf, std::uint64_t off, T& out) {
  if (off > elf.size() || elf.size() - off < sizeof(T)) return false;
  std::memcpy(&out, elf.data() + off, sizeof(T));
  return true;
}

// The parts of the ELF file the search needs: loadable segments and RELATIVE relocations.
struct Image {
  std::vector<Elf64_Phdr> loads;
  std::map<std::uint64_t, std::uint64_t> relative;  // slot vaddr -> target vaddr

  std::optional<std::uint64_t> vaddr_of(std::uint64_t file_off) const {
    for (const auto& p : loads)
      if (file_off >= p.p_offset && file_off - p.p_offset < p.p_filesz)
        return p.p_vaddr + (file_off - p.p_offset);
    return std::nullopt;
  }
  // File offset of executable code at `vaddr`.
  std::optional<std::uint64_t> code_offset(std::uint64_t vaddr) const {
    for (const auto& p : loads)
      if ((p.p_flags & PF_X) && vaddr >= p.p_vaddr && vaddr - p.p_vaddr < p.p_filesz)
        return p.p_offset + (vaddr - p.p_vaddr);
    return std::nullopt;
  }
  std::optional<std::uint64_t> target(std::uint64_t slot) const {
    auto it = relative.find(slot);
    if (it == relative.end()) return std::nullopt;
    return it->second;
  }
};

Result<Image> read_image(std::span<const std::byte> elf) {
  Elf64_Ehdr eh{};
  if (!read_at(elf, 0, eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    return make_error("not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return make_error("not a 64-bit little-endian ELF file");
  std::uint32_t relative_type = 0;
  if (eh.e_machine == EM_X86_64)
    relative_type = R_X86_64_RELATIVE;
  else if (eh.e_machine == EM_AARCH64)
    relative_type = R_AARCH64_RELATIVE;
  else
    return make_error("ELF machine {} is neither x86_64 nor aarch64", eh.e_machine);
  Image img;
  for (std::uint16_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    if (!read_at(elf, eh.e_phoff + std::uint64_t{i} * eh.e_phentsize, ph))
      return make_error("truncated program headers");
    if (ph.p_type == PT_LOAD) img.loads.push_back(ph);
  }
  for (std::uint16_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh{};
    if (!read_at(elf, eh.e_shoff + std::uint64_t{i} * eh.e_shentsize, sh))
      return make_error("truncated section headers");
    if (sh.sh_type != SHT_RELA || sh.sh_entsize != sizeof(Elf64_Rela)) continue;
    for (std::uint64_t off = 0; off + sizeof(Elf64_Rela) <= sh.sh_size; off += sizeof(Elf64_Rela)) {
      Elf64_Rela r{};
      if (!read_at(elf, sh.sh_offset + off, r)) return make_error("truncated relocations");
      if (ELF64_R_TYPE(r.r_info) == relative_type)
        img.relative[r.r_offset] = static_cast<std::uint64_t>(r.r_addend);
    }
  }
  if (img.relative.empty()) return make_error("no RELATIVE relocations (not a shared object?)");
  return img;
}

// Addresses of every NUL-terminated occurrence of `name` (also as the tail of a longer string:
// linkers merge string tails).
std::set<std::uint64_t> string_addresses(std::span<const std::byte> elf, const Image& img,
                                         std::string_view name) {
  std::set<std::uint64_t> out;
  const auto* begin = reinterpret_cast<const char*>(elf.data());
  const std::string_view all(begin, elf.size());
  const std::string needle = std::string(name) + '\0';
  for (auto pos = all.find(needle); pos != std::string_view::npos; pos = all.find(needle, pos + 1))
    if (auto va = img.vaddr_of(pos)) out.insert(*va);
  return out;
}

// The handler of the descriptor whose funcname is one of `names`: its four function pointers
// must all point into code, or the match is something else that points at the same string.
std::optional<std::uint64_t> handler_of(const Image& img, const std::set<std::uint64_t>& names) {
  for (const auto& [slot, target] : img.relative) {
    if (!names.contains(target) || slot < kFuncnameSlot) continue;
    const std::uint64_t base = slot - kFuncnameSlot;
    bool all_code = true;
    for (std::uint64_t i = 0; i < 4 && all_code; ++i) {
      auto fn = img.target(base + i * sizeof(std::uint64_t));
      all_code = fn && img.code_offset(*fn);
    }
    if (all_code) return img.code_offset(*img.target(base));
  }
  return std::nullopt;
}

}  // namespace

const std::vector<std::string> kGaneshaLibraryPaths = {
    "/usr/lib/ganesha/libganesha_nfsd.so",                    // Debian, Ubuntu
    "/usr/lib64/ganesha/libganesha_nfsd.so",                  // RHEL, Fedora, SUSE
    "/usr/lib/x86_64-linux-gnu/ganesha/libganesha_nfsd.so",   // multiarch builds
    "/usr/lib/aarch64-linux-gnu/ganesha/libganesha_nfsd.so",  //
    "/usr/local/lib/ganesha/libganesha_nfsd.so",              // built from source
    "/usr/local/lib64/ganesha/libganesha_nfsd.so",
};

Result<std::vector<NlmHandler>> find_nlm_handlers(std::span<const std::byte> elf) {
  auto img = read_image(elf);
  if (!img) return img.error();
  std::vector<NlmHandler> out;
  std::set<std::uint64_t> seen;
  for (const auto& proc : kProcedures) {
    auto off = handler_of(*img, string_addresses(elf, *img, proc.funcname));
    if (!off || !seen.insert(*off).second) continue;
    out.push_back({std::string(proc.funcname), *off, proc.args});
  }
  if (std::none_of(out.begin(), out.end(), [](const auto& h) { return h.funcname == "NLM4_LOCK"; }))
    return make_error(
        "no NLM4 dispatch table entry for NLM4_LOCK (not NFS-Ganesha's NFS library?)");
  return out;
}

Result<std::vector<NlmHandler>> find_nlm_handlers_in(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_errno_error(errno, "cannot open {}", path);
  std::vector<char> bytes;
  bytes.reserve(4u << 20);
  bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (bytes.size() > kMaxLibraryBytes) return make_error("{} is larger than expected", path);
  auto handlers = find_nlm_handlers(std::as_bytes(std::span(bytes)));
  if (!handlers) return make_error("{}: {}", path, handlers.error().message);
  return handlers;
}

Result<std::string> find_ganesha_library(const std::vector<std::string>& candidates) {
  for (const auto& path : candidates)
    if (::access(path.c_str(), R_OK) == 0) return path;
  return make_error("NFS-Ganesha's libganesha_nfsd.so is not installed (looked in {})",
                    fmt::join(candidates, ", "));
}

void GaneshaUprobes::LinkDeleter::operator()(bpf_link* link) const { bpf_link__destroy(link); }

Result<GaneshaUprobes> GaneshaUprobes::attach(const std::string& library, bpf_program* lock_entry,
                                              bpf_program* unlock_entry, bpf_program* on_return) {
  auto handlers = find_nlm_handlers_in(library);
  if (!handlers) return handlers.error();
  GaneshaUprobes out;
  out.library_ = library;
  auto add = [&](bpf_program* prog, const NlmHandler& h, bool retprobe) -> Result<void> {
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe);
    // pid -1: every process that maps the library (the programs filter by lock manager).
    bpf_link* link = bpf_program__attach_uprobe_opts(
        prog, -1, library.c_str(), static_cast<std::size_t>(h.file_offset), &opts);
    if (!link)
      return make_errno_error(errno, "cannot attach a uprobe to {}'s {} handler (offset {:#x})",
                              library, h.funcname, h.file_offset);
    out.links_.emplace_back(link);
    return {};
  };
  for (const auto& h : *handlers) {
    if (auto r = add(h.args == NlmArgs::lockargs ? lock_entry : unlock_entry, h, false); !r)
      return r.error();
    if (auto r = add(on_return, h, true); !r) return r.error();
  }
  out.handlers_ = handlers->size();
  return out;
}

}  // namespace lockferry::capture
