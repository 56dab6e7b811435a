// SPDX-License-Identifier: Apache-2.0
// One client lock manager's view of one NFSv3 server: the export's root handle from MOUNT, file
// handles from NFSv3 LOOKUP/CREATE, and NLM4 TEST/LOCK/UNLOCK calls as a given lock owner.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lockferry/result.h"

namespace lockferry::tools {

// A byte range of a file below the export root; len 0 means "to the end of the file" (NLM4).
struct LockRange {
  std::string file;
  std::uint64_t start = 0;
  std::uint64_t len = 0;
  bool exclusive = true;
  // NLM4_LOCK with block=true: the server queues a conflicting request (status "blocked") and
  // grants it later with a GRANTED callback, which this tool does not serve.
  bool block = false;
};

// Who is locking, as the server's lock manager sees it. The server keys lock owners by
// (caller_name, oh, svid); a real client's oh is "<pid>@<hostname>"-like and unique per process.
struct LockOwner {
  std::string caller_name;
  std::string oh;
  std::uint32_t svid = 0;
  std::int32_t nsm_state = 1;  // the client's own NSM state number, sent in NLM4_LOCK
};

// The lock holder a denied NLM4_TEST reports.
struct Holder {
  bool exclusive = false;
  std::uint32_t svid = 0;
  std::string oh;
  std::uint64_t start = 0;
  std::uint64_t len = 0;
};

struct TestOutcome {
  int status = 0;  // nlm4 stat
  std::optional<Holder> holder;
};

// SM_NOTIFY to `server`'s statd from client `mon_name` with its new NSM `state`: what a client
// sends when it rebooted. statd tells the server's lock manager, which drops the client's locks.
Result<void> send_reboot_notify(const std::string& server, const std::string& mon_name, int state,
                                std::chrono::milliseconds timeout);

// "granted", "denied", "denied_grace_period", ... for an nlm4 stat value.
std::string nlm_status_name(int status);
inline constexpr int kNlmGranted = 0;

class NlmSession {
 public:
  // Connects to MOUNT v3, NFS v3 and NLM v4 on `server` and mounts `export_path`.
  static Result<std::unique_ptr<NlmSession>> open(const std::string& server,
                                                  const std::string& export_path, LockOwner owner,
                                                  std::chrono::milliseconds timeout);
  ~NlmSession();
  NlmSession(const NlmSession&) = delete;
  NlmSession& operator=(const NlmSession&) = delete;

  // The NFSv3 handle of `file` (relative to the export root, '/'-separated, no ".."),
  // created as an empty regular file when missing and `create` is set.
  Result<std::vector<char>> resolve(const std::string& file, bool create);

  // NLM4 calls answer with an nlm4 stat; transport failures are errors.
  Result<int> lock(const std::vector<char>& fh, const LockRange& range, bool reclaim);
  Result<TestOutcome> test(const std::vector<char>& fh, const LockRange& range);
  Result<int> unlock(const std::vector<char>& fh, const LockRange& range);

 private:
  struct Impl;
  explicit NlmSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockferry::tools
