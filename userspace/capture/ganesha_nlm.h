// SPDX-License-Identifier: Apache-2.0
// NFS-Ganesha's NLM clients by name. Ganesha's NLM locks are OFD locks of the server process, so
// the kernel's lock says nothing about the client; the NLM request being served does. Its
// handlers (nlm4_Lock, nlm4_Unlock, ...) are not exported from libganesha_nfsd.so, but its NLM4
// dispatch table is there in every build: nfs_function_desc_t {service_function, free_function,
// xdr_decode_func, xdr_encode_func, funcname, dispatch_behaviour} entries with funcnames
// "NLM4_LOCK", "NLM4_UNLOCK", ... (src/MainNFSD/nfs_worker_thread.c). In the shared object
// every pointer of that table is a RELATIVE relocation, so the handler's address is the
// addend of the relocation four pointers before the one pointing at its funcname. The uprobes
// on those handlers (bpf/lock_watch.bpf.c) remember each request's caller_name per thread, and
// the lock event of the same thread carries it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lockferry/result.h"

struct bpf_link;
struct bpf_program;

namespace lockferry::capture {

// Where the first argument of a handler keeps the caller_name pointer (events.h).
enum class NlmArgs { lockargs, unlockargs };

struct NlmHandler {
  std::string funcname;       // the dispatch table's name: "NLM4_LOCK"
  std::uint64_t file_offset;  // of the handler's first instruction, for the uprobe
  NlmArgs args;
  bool operator==(const NlmHandler&) const = default;
};

// The NLM handlers that take or drop locks, found in the bytes of libganesha_nfsd.so (ELF64,
// little-endian, x86_64 or aarch64). A handler shared by two procedures (NLM4_LOCK and
// NLM4_NM_LOCK) is listed once. An error says why none was found.
Result<std::vector<NlmHandler>> find_nlm_handlers(std::span<const std::byte> elf);

// The same, read from `path`.
Result<std::vector<NlmHandler>> find_nlm_handlers_in(const std::string& path);

// The first of `candidates` that exists (default: where distributions install it).
Result<std::string> find_ganesha_library(const std::vector<std::string>& candidates);
extern const std::vector<std::string> kGaneshaLibraryPaths;

// The uprobes attached to one library; detached when destroyed.
class GaneshaUprobes {
 public:
  GaneshaUprobes() = default;
  const std::string& library() const { return library_; }
  std::size_t handlers() const { return handlers_; }
  bool attached() const { return !links_.empty(); }

  // Attaches `lock_entry` / `unlock_entry` to the handlers' entries by their arguments and
  // `on_return` to every handler's return.
  static Result<GaneshaUprobes> attach(const std::string& library, bpf_program* lock_entry,
                                       bpf_program* unlock_entry, bpf_program* on_return);

 private:
  struct LinkDeleter {
    void operator()(bpf_link* link) const;
  };
  std::string library_;
  std::size_t handlers_ = 0;
  std::vector<std::unique_ptr<bpf_link, LinkDeleter>> links_;
};

}  // namespace lockferry::capture
