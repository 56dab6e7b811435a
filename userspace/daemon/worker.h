// SPDX-License-Identifier: Apache-2.0
// lockferryd's worker: requests that can take seconds (store reads, reclaim audits, migrations)
// run here, one at a time, on a thread of its own with its own store connection, and hand their
// answer back to the daemon's loop. The loop only dispatches (docs/security.md, "a busy event
// loop").
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <string>

#include "store/store.h"

namespace lockferry::daemon {

class Worker {
 public:
  // Runs on the worker thread with the worker's store; a null store means it could not be opened
  // (the job says so in its answer).
  using Job = std::function<void(store::Store* store, const std::string& store_error)>;

  Worker(boost::asio::io_context& io, std::string store_url);
  ~Worker();  // waits for the running job; queued ones are dropped
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Queues `job` (call on the loop). The daemon's loop does not finish (io_context::run() does not
  // return) before a job that started has finished, so its answer is still delivered.
  void post(Job job);
  // Runs `compute` on the worker and `done` with its result on the daemon's loop.
  template <typename T>
  void run(std::function<T(store::Store* store, const std::string& store_error)> compute,
           std::function<void(T)> done) {
    post([this, compute = std::move(compute), done = std::move(done)](
             store::Store* store, const std::string& error) mutable {
      auto result = std::make_shared<T>(compute(store, error));
      deliver([done = std::move(done), result] { done(std::move(*result)); });
    });
  }
  // Queued jobs that have not started are dropped from now on.
  void stop();

 private:
  void deliver(std::function<void()> fn);

  boost::asio::io_context& io_;
  std::string store_url_;
  std::unique_ptr<store::Store> store_;  // opened on the worker thread, used only there
  std::string store_error_;
  std::atomic<bool> stopped_{false};
  // Started by the first job, on the loop: lockferryd drops capabilities at the end of its start,
  // and capabilities are per thread, so a thread started earlier would keep them all.
  std::unique_ptr<boost::asio::thread_pool> pool_;
};

}  // namespace lockferry::daemon
