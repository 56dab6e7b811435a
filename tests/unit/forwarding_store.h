// SPDX-License-Identifier: Apache-2.0
// A Store that forwards every call to another one, for tests that watch or disturb a few calls
// (count them, refuse some, pause an adopter right after its fence) and leave the rest real.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace lockferry::testing {

class ForwardingStore : public store::Store {
 public:
  explicit ForwardingStore(store::Store& inner) : inner_(inner) {}

  std::string url() const override { return inner_.url(); }
  std::size_t backlog() const override { return inner_.backlog(); }
  Result<void> put_monitor(const MonitorRecord& r) override { return inner_.put_monitor(r); }
  Result<void> put_monitor_file(const std::vector<MonitorRecord>& records) override {
    return inner_.put_monitor_file(records);
  }
  Result<void> put_monitor_files(const std::vector<std::vector<MonitorRecord>>& files) override {
    return inner_.put_monitor_files(files);
  }
  Result<void> delete_monitor(std::string_view node, std::string_view name,
                              std::uint64_t epoch) override {
    return inner_.delete_monitor(node, name, epoch);
  }
  Result<std::vector<MonitorRecord>> list_monitor(std::string_view node) override {
    return inner_.list_monitor(node);
  }
  Result<void> put_locks(std::string_view node, std::uint64_t epoch,
                         const std::vector<LockRecord>& locks) override {
    return inner_.put_locks(node, epoch, locks);
  }
  Result<void> update_locks(std::string_view node, std::uint64_t epoch,
                            const store::LockDelta& delta) override {
    return inner_.update_locks(node, epoch, delta);
  }
  Result<std::vector<LockRecord>> list_locks(std::string_view node) override {
    return inner_.list_locks(node);
  }
  Result<std::vector<std::string>> list_nodes() override { return inner_.list_nodes(); }
  Result<std::uint64_t> epoch(std::string_view node) override { return inner_.epoch(node); }
  Result<store::Fence> fence(std::string_view node) override { return inner_.fence(node); }
  Result<std::uint64_t> bump_epoch(std::string_view node, std::uint64_t expected,
                                   std::string_view adopter) override {
    return inner_.bump_epoch(node, expected, adopter);
  }
  Result<void> put_migration(const store::MigrationRecord& m) override {
    return inner_.put_migration(m);
  }
  Result<std::vector<store::MigrationRecord>> list_migrations() override {
    return inner_.list_migrations();
  }

 protected:
  store::Store& inner_;
};

}  // namespace lockferry::testing
