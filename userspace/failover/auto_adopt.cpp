// SPDX-License-Identifier: Apache-2.0
// Adoption on a worker thread; see auto_adopt.h.
#include "failover/auto_adopt.h"

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "store/store.h"

namespace lockferry::failover {

AutoAdopter::AutoAdopter(std::string store_url, Post post)
    : store_url_(std::move(store_url)), post_(std::move(post)) {}

AutoAdopter::~AutoAdopter() { join(); }

std::vector<Adoption> AutoAdopter::adoptions() const {
  std::lock_guard lock(mutex_);
  return adoptions_;
}

bool AutoAdopter::adopt(MigrateOptions options, std::string reason, Done done) {
  std::size_t index;
  {
    std::lock_guard lock(mutex_);
    for (const auto& a : adoptions_)
      if (a.from_node == options.from_node && a.running) return false;
    Adoption a;
    a.from_node = options.from_node;
    a.reason = std::move(reason);
    a.detected_ns = clock::now_ns();
    a.running = true;
    adoptions_.push_back(a);
    index = adoptions_.size() - 1;
  }
  // A peer of the configured cluster that the health agent saw serving is no typo: its service
  // is taken over even if it never stored a record.
  options.adopt_unknown = true;
  threads_.emplace_back([this, index, options = std::move(options), done = std::move(done)] {
    // Its own connection: a store backend need not be safe to share between threads.
    Result<MigrateReport> report = make_error("not run");
    auto store = store::open_store(store_url_);
    if (!store)
      report = make_error("cannot open store {}: {}", store_url_, store.error().message);
    else
      report = migrate(**store, options);
    Adoption finished;
    {
      std::lock_guard lock(mutex_);
      Adoption& a = adoptions_[index];
      a.running = false;
      a.finished_ns = clock::now_ns();
      if (report) {
        a.ok = report->ok;
        a.message = report->message;
        a.epoch = report->epoch;
        a.records = report->records;
        a.notified = report->recognize.notified;
        a.not_notified = report->recognize.not_notified;
        a.recognize = report->recognize.method;
        a.nsm_state = report->recognize.nsm_state;
        a.notify = report->recognize.clients;
        a.clients = report->clients;
      } else {
        a.ok = false;
        a.message = report.error().message;
      }
      finished = a;
    }
    post_([done, finished, report = std::move(report)] {
      if (done) done(finished, report);
    });
  });
  return true;
}

void AutoAdopter::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace lockferry::failover
