// SPDX-License-Identifier: Apache-2.0
// open_store: picks the Store backend from the URL scheme and checks the rest of the URL.
#include <string>

#include "store/dir_store.h"
#include "store/pg_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

constexpr std::string_view kSupported =
    "dir:///absolute/path, sqlite:///absolute/path/file.db, "
    "postgresql://[user@]host[:port]/database or postgresql:///database?host=/socket/dir";

// The absolute path of a dir:// or sqlite:// URL, refused when it is relative or has '.'/'..'.
Result<void> check_local_path(std::string_view url, std::string_view scheme, std::string_view rest,
                              std::string_view example) {
  // dir:///srv/x has an empty authority; dir://srv/x would make "srv" a host, which a
  // directory cannot have, and is almost always a relative path typed by mistake.
  if (rest.empty() || rest.front() != '/') {
    return make_error(
        "store URL '{}': {}:// needs an absolute path after it, e.g. {}:///{} "
        "(three slashes)",
        url, scheme, scheme, example);
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
  return {};
}

Result<std::unique_ptr<Store>> open_dir_store(std::string_view url, std::string_view rest) {
  if (auto ok = check_local_path(url, "dir", rest, "var/lib/lockferry/store"); !ok)
    return ok.error();
  auto store = DirStore::open(std::string(rest));
  if (!store) return store.error();
  return std::unique_ptr<Store>(std::move(*store));
}

Result<std::unique_ptr<Store>> open_sqlite_store(std::string_view url, std::string_view rest) {
  if (auto ok = check_local_path(url, "sqlite", rest, "var/lib/lockferry/store.db"); !ok)
    return ok.error();
  if (rest.find('?') != std::string_view::npos) {
    return make_error("store URL '{}': sqlite:// takes no options after '?'", url);
  }
  auto store = SqliteStore::open(std::string(rest));
  if (!store) return store.error();
  return std::unique_ptr<Store>(std::move(*store));
}

}  // namespace

Result<std::unique_ptr<Store>> open_store(std::string_view url) {
  auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return make_error("store URL '{}' has no scheme; supported: {}", hide_password(url),
                      kSupported);
  }
  std::string_view scheme = url.substr(0, sep);
  std::string_view rest = url.substr(sep + 3);
  if (scheme == "dir") return open_dir_store(url, rest);
  if (scheme == "sqlite") return open_sqlite_store(url, rest);
  if (scheme == "postgresql" || scheme == "postgres") {
    if (url.find('\0') != std::string_view::npos)
      return make_error("store URL '{}': contains a NUL byte", hide_password(url));
    auto store = PgStore::open(url);
    if (!store) return store.error();
    return std::unique_ptr<Store>(std::move(*store));
  }
  return make_error("store URL '{}': unsupported scheme '{}'; supported: {}", hide_password(url),
                    scheme, kSupported);
}

}  // namespace lockferry::store
