// SPDX-License-Identifier: Apache-2.0
// lockferryd's worker thread; see worker.h.
#include "daemon/worker.h"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

namespace lockferry::daemon {

Worker::Worker(boost::asio::io_context& io, std::string store_url)
    : io_(io), store_url_(std::move(store_url)) {}

Worker::~Worker() {
  stop();
  if (pool_) pool_->join();
}

void Worker::post(Job job) {
  // Keeps the loop running until the job's answer is delivered.
  auto work = boost::asio::make_work_guard(io_);
  if (!pool_) pool_ = std::make_unique<boost::asio::thread_pool>(1);
  boost::asio::post(*pool_, [this, job = std::move(job), work = std::move(work)]() mutable {
    if (stopped_) return;
    if (!store_ && store_error_.empty()) {
      auto store = store::open_store(store_url_);
      if (store) {
        store_ = std::move(*store);
      } else {
        store_error_ = "cannot open store " + store_url_ + ": " + store.error().message;
        spdlog::error("worker: {}", store_error_);
      }
    }
    try {
      job(store_.get(), store_error_);
    } catch (const std::exception& e) {
      spdlog::error("worker: a request failed: {}", e.what());
    }
    // A store that failed is tried again by the next request.
    if (!store_) store_error_.clear();
  });
}

void Worker::deliver(std::function<void()> fn) { boost::asio::post(io_, std::move(fn)); }

void Worker::stop() { stopped_ = true; }

}  // namespace lockferry::daemon
