// SPDX-License-Identifier: Apache-2.0
// open_store: picks the Store backend from the URL scheme and checks the rest of the URL.
#include <string>

#include "store/dir_store.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

constexpr std::string_view kSupported = "dir:///absolute/path";

Result<std::unique_ptr<Store>> open_dir_store(std::string_view url, std::string_view rest) {
  // dir:///srv/x has an empty authority; dir://srv/x would make "srv" a host, which a
  // directory cannot have, and is almost always a relative path typed by mistake.
  if (rest.empty() || rest.front() != '/') {
    return make_error(
        "store URL '{}': dir:// needs an absolute path after it, e.g. "
        "dir:///var/lib/lockferry/store (three slashes)",
        url);
  }
  if (rest.find('\0') != std::string_view::npos) {
    return make_error("store URL '{}': the path contains a NUL byte", url);
  }
  // "." and ".." components make the same store reachable under several URLs (and nodes
  // disagree on which one they use); refuse them instead of guessing.
  std::size_t start = 1;
  while (start <= rest.size()) {
    auto slash = rest.find('/', start);
    auto part = rest.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (part == "." || part == "..") {
      return make_error("store URL '{}': the path must not contain '.' or '..' components", url);
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  auto store = DirStore::open(std::string(rest));
  if (!store) return store.error();
  return std::unique_ptr<Store>(std::move(*store));
}

}  // namespace

Result<std::unique_ptr<Store>> open_store(std::string_view url) {
  auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return make_error("store URL '{}' has no scheme; supported: {}", url, kSupported);
  }
  std::string_view scheme = url.substr(0, sep);
  std::string_view rest = url.substr(sep + 3);
  if (scheme == "dir") return open_dir_store(url, rest);
  return make_error("store URL '{}': unsupported scheme '{}'; supported: {}", url, scheme,
                    kSupported);
}

}  // namespace lockferry::store
