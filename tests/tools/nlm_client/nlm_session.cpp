// SPDX-License-Identifier: Apache-2.0
// MOUNT/NFSv3/NLM4 calls through libnfs's raw RPC API (see nlm_session.h).
#include "nlm_client/nlm_session.h"

#include <spdlog/spdlog.h>

// libnfs.h must come first: it defines EXTERN for the raw headers.
// clang-format off
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs-raw-nlm.h>
#include <nfsc/libnfs-raw-nsm.h>
#include <nfsc/libnfs-raw.h>
// clang-format on

#include <array>
#include <cstring>
#include <sstream>

#include "nlm_client/rpc_call.h"

namespace lockferry::tools {

std::string nlm_status_name(int status) {
  switch (status) {
    case NLM4_GRANTED:
      return "granted";
    case NLM4_DENIED:
      return "denied";
    case NLM4_DENIED_NOLOCKS:
      return "denied_nolocks";
    case NLM4_BLOCKED:
      return "blocked";
    case NLM4_DENIED_GRACE_PERIOD:
      return "denied_grace_period";
    case NLM4_DEADLCK:
      return "deadlock";
    case NLM4_ROFS:
      return "rofs";
    case NLM4_STALE_FH:
      return "stale_fh";
    case NLM4_FBIG:
      return "fbig";
    case NLM4_FAILED:
      return "failed";
    default:
      return "nlm_status_" + std::to_string(status);
  }
}

struct NlmSession::Impl {
  std::string server;
  LockOwner owner;
  std::vector<char> root_fh;
  std::unique_ptr<RpcConnection> nfs;
  std::unique_ptr<RpcConnection> nlm;
  std::uint32_t next_cookie = 1;

  // A fresh cookie per call; the server echoes it and uses it to match async replies.
  std::array<char, 4> cookie() {
    const std::uint32_t c = next_cookie++;
    std::array<char, 4> out{};
    std::memcpy(out.data(), &c, sizeof c);
    return out;
  }

  // Fills an nlm4_lock that points into `fh`, `range`, and this owner (no copies: the
  // args only live for the duration of one blocking call).
  nlm4_lock make_lock(const std::vector<char>& fh, const LockRange& range) {
    nlm4_lock l{};
    l.caller_name = const_cast<char*>(owner.caller_name.c_str());
    l.fh.data.data_len = static_cast<u_int>(fh.size());
    l.fh.data.data_val = const_cast<char*>(fh.data());
    l.oh = const_cast<char*>(owner.oh.c_str());
    l.svid = owner.svid;
    l.l_offset = range.start;
    l.l_len = range.len;
    return l;
  }

  Result<std::optional<std::vector<char>>> lookup(const std::vector<char>& dir,
                                                  const std::string& name) {
    LOOKUP3args args{};
    args.what.dir.data.data_len = static_cast<u_int>(dir.size());
    args.what.dir.data.data_val = const_cast<char*>(dir.data());
    args.what.name = const_cast<char*>(name.c_str());
    int status = NFS3_OK;
    std::vector<char> fh;
    auto r = nfs->call(
        "LOOKUP " + name,
        [&](rpc_context* rpc, RpcCallback cb, void* p) {
          return rpc_nfs3_lookup_async(rpc, cb, &args, p);
        },
        [&](void* data) {
          auto* res = static_cast<LOOKUP3res*>(data);
          status = res->status;
          if (status == NFS3_OK) {
            const auto& obj = res->LOOKUP3res_u.resok.object.data;
            fh.assign(obj.data_val, obj.data_val + obj.data_len);
          }
        });
    if (!r) return r.error();
    if (status == NFS3ERR_NOENT) return std::optional<std::vector<char>>{};
    if (status != NFS3_OK) {
      return make_error("LOOKUP {} on {}: {}", name, server, nfsstat3_to_str(status));
    }
    return std::optional<std::vector<char>>{std::move(fh)};
  }

  Result<std::vector<char>> create(const std::vector<char>& dir, const std::string& name) {
    CREATE3args args{};
    args.where.dir.data.data_len = static_cast<u_int>(dir.size());
    args.where.dir.data.data_val = const_cast<char*>(dir.data());
    args.where.name = const_cast<char*>(name.c_str());
    // UNCHECKED: a file another client created meanwhile is simply opened.
    args.how.mode = UNCHECKED;
    args.how.createhow3_u.obj_attributes.mode.set_it = 1;
    args.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
    int status = NFS3_OK;
    std::optional<std::vector<char>> fh;
    auto r = nfs->call(
        "CREATE " + name,
        [&](rpc_context* rpc, RpcCallback cb, void* p) {
          return rpc_nfs3_create_async(rpc, cb, &args, p);
        },
        [&](void* data) {
          auto* res = static_cast<CREATE3res*>(data);
          status = res->status;
          const auto& obj = res->CREATE3res_u.resok.obj;
          if (status == NFS3_OK && obj.handle_follows) {
            const auto& h = obj.post_op_fh3_u.handle.data;
            fh.emplace(h.data_val, h.data_val + h.data_len);
          }
        });
    if (!r) return r.error();
    if (status != NFS3_OK) {
      return make_error("CREATE {} on {}: {} (create the file on the export first?)", name, server,
                        nfsstat3_to_str(status));
    }
    if (fh) return *fh;
    // The server may omit the handle of a new file; ask for it.
    auto again = lookup(dir, name);
    if (!again) return again.error();
    if (!*again)
      return make_error("CREATE {} on {} succeeded but LOOKUP finds no file", name, server);
    return **again;
  }
};

NlmSession::NlmSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NlmSession::~NlmSession() = default;

Result<std::unique_ptr<NlmSession>> NlmSession::open(const std::string& server,
                                                     const std::string& export_path,
                                                     LockOwner owner,
                                                     std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->server = server;
  impl->owner = std::move(owner);

  // MOUNT only hands out the root handle; the connection is not needed afterwards.
  {
    auto mnt = RpcConnection::connect(server, MOUNT_PROGRAM, MOUNT_V3, "MOUNT v3", timeout);
    if (!mnt) return mnt.error();
    int status = MNT3_OK;
    auto r = (*mnt)->call(
        "MNT " + export_path,
        [&](rpc_context* rpc, RpcCallback cb, void* p) {
          return rpc_mount3_mnt_async(rpc, cb, const_cast<char*>(export_path.c_str()), p);
        },
        [&](void* data) {
          auto* res = static_cast<mountres3*>(data);
          status = res->fhs_status;
          if (status == MNT3_OK) {
            const auto& fh = res->mountres3_u.mountinfo.fhandle;
            impl->root_fh.assign(fh.fhandle3_val, fh.fhandle3_val + fh.fhandle3_len);
          }
        });
    if (!r) return r.error();
    if (status != MNT3_OK) {
      return make_error("MNT {} on {}: mount status {} (is the path exported to this client?)",
                        export_path, server, status);
    }
  }
  auto nfs = RpcConnection::connect(server, NFS_PROGRAM, NFS_V3, "NFS v3", timeout);
  if (!nfs) return nfs.error();
  impl->nfs = std::move(*nfs);
  auto nlm = RpcConnection::connect(server, NLM_PROGRAM, NLM_V4, "NLM v4", timeout);
  if (!nlm) return nlm.error();
  impl->nlm = std::move(*nlm);
  spdlog::debug("mounted {}:{} (root handle {} bytes)", server, export_path, impl->root_fh.size());
  return std::unique_ptr<NlmSession>(new NlmSession(std::move(impl)));
}

Result<std::vector<char>> NlmSession::resolve(const std::string& file, bool create) {
  std::vector<std::string> parts;
  std::stringstream ss(file);
  for (std::string part; std::getline(ss, part, '/');) {
    if (part.empty() || part == ".") continue;
    if (part == "..")
      return make_error("file {}: '..' is not allowed, name it from the export root", file);
    parts.push_back(part);
  }
  if (parts.empty()) return make_error("file '{}' names the export root, not a file", file);
  std::vector<char> fh = impl_->root_fh;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    auto next = impl_->lookup(fh, parts[i]);
    if (!next) return next.error();
    if (*next) {
      fh = std::move(**next);
      continue;
    }
    const bool last = i + 1 == parts.size();
    if (!last || !create) {
      return make_error("file {} on {}: {} does not exist (create it on the export first)", file,
                        impl_->server, parts[i]);
    }
    auto made = impl_->create(fh, parts[i]);
    if (!made) return made.error();
    spdlog::info("created {} on {}", file, impl_->server);
    fh = std::move(*made);
  }
  return fh;
}

Result<void> send_reboot_notify(const std::string& server, const std::string& mon_name, int state,
                                std::chrono::milliseconds timeout) {
  auto nsm = RpcConnection::connect(server, NSM_PROGRAM, NSM_V1, "NSM v1", timeout);
  if (!nsm) return nsm.error();
  NSM1_NOTIFYargs args{};
  args.mon_name = const_cast<char*>(mon_name.c_str());
  args.state = state;
  return (*nsm)->call(
      fmt::format("SM_NOTIFY {} state {}", mon_name, state),
      [&](rpc_context* rpc, RpcCallback cb, void* p) {
        return rpc_nsm1_notify_async(rpc, cb, &args, p);
      },
      [](void*) {});
}

Result<int> NlmSession::lock(const std::vector<char>& fh, const LockRange& range, bool reclaim) {
  auto cookie = impl_->cookie();
  NLM4_LOCKargs args{};
  args.cookie.data.data_len = cookie.size();
  args.cookie.data.data_val = cookie.data();
  // Blocking only when asked: the server's GRANTED callback finds no NLM service here, but the
  // server holds the lock for us from the moment it grants it.
  args.block = range.block ? 1 : 0;
  args.exclusive = range.exclusive ? 1 : 0;
  args.lock = impl_->make_lock(fh, range);
  args.reclaim = reclaim ? 1 : 0;
  args.state = impl_->owner.nsm_state;
  int status = NLM4_FAILED;
  auto r = impl_->nlm->call(
      fmt::format("NLM4_LOCK {} [{}, +{}]{}", range.file, range.start, range.len,
                  reclaim ? " reclaim" : ""),
      [&](rpc_context* rpc, RpcCallback cb, void* p) {
        return rpc_nlm4_lock_async(rpc, cb, &args, p);
      },
      [&](void* data) { status = static_cast<NLM4_LOCKres*>(data)->status; });
  if (!r) return r.error();
  return status;
}

Result<TestOutcome> NlmSession::test(const std::vector<char>& fh, const LockRange& range) {
  auto cookie = impl_->cookie();
  NLM4_TESTargs args{};
  args.cookie.data.data_len = cookie.size();
  args.cookie.data.data_val = cookie.data();
  args.exclusive = range.exclusive ? 1 : 0;
  args.lock = impl_->make_lock(fh, range);
  TestOutcome out;
  auto r = impl_->nlm->call(
      fmt::format("NLM4_TEST {} [{}, +{}]", range.file, range.start, range.len),
      [&](rpc_context* rpc, RpcCallback cb, void* p) {
        return rpc_nlm4_test_async(rpc, cb, &args, p);
      },
      [&](void* data) {
        const auto& reply = static_cast<NLM4_TESTres*>(data)->reply;
        out.status = reply.status;
        if (reply.status == NLM4_DENIED) {
          const auto& h = reply.nlm4_testreply_u.lock.holder;
          out.holder =
              Holder{h.exclusive != 0, h.svid, h.oh != nullptr ? h.oh : "", h.l_offset, h.l_len};
        }
      });
  if (!r) return r.error();
  return out;
}

Result<int> NlmSession::unlock(const std::vector<char>& fh, const LockRange& range) {
  auto cookie = impl_->cookie();
  NLM4_UNLOCKargs args{};
  args.cookie.data.data_len = cookie.size();
  args.cookie.data.data_val = cookie.data();
  args.lock = impl_->make_lock(fh, range);
  int status = NLM4_FAILED;
  auto r = impl_->nlm->call(
      fmt::format("NLM4_UNLOCK {} [{}, +{}]", range.file, range.start, range.len),
      [&](rpc_context* rpc, RpcCallback cb, void* p) {
        return rpc_nlm4_unlock_async(rpc, cb, &args, p);
      },
      [&](void* data) { status = static_cast<NLM4_UNLOCKres*>(data)->status; });
  if (!r) return r.error();
  return status;
}

}  // namespace lockferry::tools
