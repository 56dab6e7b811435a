// SPDX-License-Identifier: Apache-2.0
// The one BPF loader of lockferry, used by both captures (and by the function-level hooks to
// come). It owns a skeleton's whole life, one concern per module like Falco's libpman:
//   open -> choose programs from the one table (bpf_programs.h, probes in bpf_probes.h) ->
//   configure rodata and map sizes (bpf_maps.h) -> load -> fill maps -> attach -> pin
//   (bpf_pins.h) -> ring buffer on the io_context (bpf_ring.h) -> counters (bpf_maps.h) ->
//   teardown.
// Every choice (variant, program) is logged with its reason.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "capture/bpf_pins.h"
#include "capture/bpf_programs.h"
#include "capture/bpf_ring.h"
#include "lockferry/result.h"

struct bpf_object;

namespace lockferry::capture {

// libbpf's own messages (verifier logs on a load failure too) at spdlog debug level, so `-v`
// shows why a load failed without flooding normal runs.
void route_libbpf_logs();

// A skeleton's generated functions (bpftool gen skeleton) and its object's name; see
// LOCKFERRY_SKELETON.
template <typename Skel>
struct SkeletonFns {
  std::string_view object;
  Skel* (*open)();
  int (*load)(Skel*);
  int (*attach)(Skel*);
  void (*destroy)(Skel*);
};

// SkeletonFns of the skeleton generated for BPF object `name` (name.skel.h).
#define LOCKFERRY_SKELETON(name)                                           \
  ::lockferry::capture::SkeletonFns<name> {                                \
#name, &name##__open, &name##__load, &name##__attach, &name##__destroy \
  }

// The steps between open and attach that only the object's user knows.
template <typename Skel>
struct LoadSteps {
  // After the programs are chosen, before load: rodata and map sizes.
  std::function<Result<void>(Skel&)> configure;
  // After load, before attach: the maps the first event is filtered by.
  std::function<Result<void>(Skel&)> fill;
};

// What the loader does without knowing the skeleton's type.
class BpfLoaderBase {
 public:
  BpfLoaderBase(const BpfLoaderBase&) = delete;
  BpfLoaderBase& operator=(const BpfLoaderBase&) = delete;

  // The variant loaded ("" for objects without variants), and the variants that failed before it
  // ("tp_btf unavailable: ..."; "" if none did).
  const std::string& variant() const { return variant_; }
  const std::string& tried() const { return tried_; }
  int programs_loaded() const { return programs_; }

  // Pins maps and programs under `dir` for bpftool ("" = do not pin). Pins are for debugging:
  // failing to pin is logged and never stops the capture. Returns the note for the capture's
  // reason string: ", pinned under <dir>", ", not pinned: <why>" or "".
  std::string pin(const std::string& dir);

  // The ring buffer reader; started by the user once the object is attached.
  RingBufferReader& ring() { return ring_; }

 protected:
  BpfLoaderBase(boost::asio::io_context& io, std::string_view object, std::string log_prefix);
  ~BpfLoaderBase() = default;

  // Chooses the programs of `obj` for `variant` from the table and logs each choice.
  Result<void> choose(bpf_object* obj, std::string_view variant, const std::string& tracefs);
  // " (variant)" or "" for messages.
  static std::string label(std::string_view variant);
  // Logs a failed variant and keeps it for tried().
  void note_failure(std::string_view variant, const std::string& why);
  // Logs the variant chosen and why.
  void note_choice(std::string_view variant, std::size_t candidates);
  Result<void> no_variant_loaded() const;

  std::string object_;
  std::string log_prefix_;
  std::string variant_;
  std::string tried_;
  int programs_ = 0;
  bpf_object* obj_ = nullptr;
  RingBufferReader ring_;
  PinSet pins_;
};

template <typename Skel>
class BpfLoader final : public BpfLoaderBase {
 public:
  // `log_prefix` starts the loader's log lines ("capture", "locks").
  BpfLoader(boost::asio::io_context& io, SkeletonFns<Skel> fns, std::string log_prefix)
      : BpfLoaderBase(io, fns.object, std::move(log_prefix)),
        fns_(fns),
        skel_(nullptr, fns.destroy) {}
  ~BpfLoader() { stop(); }

  // Loads the first of `variants` that loads and attaches; {""} for an object without variants,
  // whose failure is returned as it is. A failed variant is logged and kept in tried(); the error
  // names each when none loads. `tracefs` is "" when tracefs is not available.
  Result<void> load(std::span<const std::string_view> variants, const std::string& tracefs,
                    const LoadSteps<Skel>& steps) {
    route_libbpf_logs();
    tried_.clear();
    for (std::string_view variant : variants) {
      auto r = load_variant(variant, tracefs, steps);
      if (r) {
        note_choice(variant, variants.size());
        return {};
      }
      stop();
      if (variant.empty()) return r;
      note_failure(variant, r.error().message);
    }
    return no_variant_loaded();
  }

  // The skeleton: maps, programs, rodata/bss; null before load and after stop().
  Skel* get() const { return skel_.get(); }

  // Teardown, each resource freed and reset: the ring buffer reader, the pins, then the skeleton
  // (its links detach, its programs and maps go).
  void stop() {
    ring_.stop();
    pins_.unpin();
    skel_.reset();
    obj_ = nullptr;
    programs_ = 0;
  }

 private:
  Result<void> load_variant(std::string_view variant, const std::string& tracefs,
                            const LoadSteps<Skel>& steps) {
    stop();
    // open: parse the embedded object; nothing touches the kernel yet.
    skel_.reset(fns_.open());
    if (!skel_) return make_errno_error(errno, "cannot open the {} BPF object", object_);
    obj_ = skel_->obj;
    if (auto r = choose(obj_, variant, tracefs); !r) return r;
    if (steps.configure)
      if (auto r = steps.configure(*skel_); !r) return r;
    // load: the verifier checks every program; its log is at debug level on failure.
    if (int err = fns_.load(skel_.get()); err != 0)
      return make_errno_error(-err,
                              "loading the {} BPF programs{} failed (run with -v for the "
                              "libbpf/verifier log)",
                              object_, label(variant));
    // Fill the maps before attaching, so the first event is already filtered right.
    if (steps.fill)
      if (auto r = steps.fill(*skel_); !r) return r;
    // attach: one link per program, detached when the skeleton is destroyed.
    if (int err = fns_.attach(skel_.get()); err != 0)
      return make_errno_error(-err, "attaching the {} programs{} failed", object_, label(variant));
    return {};
  }

  SkeletonFns<Skel> fns_;
  std::unique_ptr<Skel, void (*)(Skel*)> skel_;
};

}  // namespace lockferry::capture
