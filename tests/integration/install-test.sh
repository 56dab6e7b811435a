#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The install layout and the Debian package: `cmake --install` into a temp root puts every file
# where the operator's tools look for it and keeps an existing configuration; `cpack -G DEB`
# builds a .deb with dependencies, conffiles and the same files under /usr and /etc, whose
# binaries run and whose configuration checks out. Nothing is installed on this machine.
# usage: install-test.sh BUILD_DIR SOURCE_DIR
source "$(dirname "$0")/lib.sh"
build=$1 src=$2
[ -x "$build/userspace/lockferryd" ] && [ -x "$build/userspace/lockferry" ] ||
  skip "lockferryd/lockferry are not built in $build (cmake --build $build first)"

# --- cmake --install --prefix <temp root> ---------------------------------------------------
root=$tmp/root
cmake --install "$build" --prefix "$root" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "cmake --install"; finish; }
for f in sbin/lockferryd sbin/lockferry lib/ocf/resource.d/lockferry/lockferry libexec/lockferry/lockferry-notify; do
  check "installed executable $f" test -x "$root/$f"
done
for f in lib/systemd/system/lockferryd.service etc/lockferry/lockferry.toml share/lockferry/lockferry.toml \
         share/man/man8/lockferryd.8 share/man/man8/lockferry.8 share/doc/lockferry/integration.md; do
  check "installed $f" test -s "$root/$f"
done
check "the unit starts the installed lockferryd" grep -qx "ExecStart=$root/sbin/lockferryd --config /etc/lockferry/lockferry.toml" "$root/lib/systemd/system/lockferryd.service"
check "the installed configuration is the shipped one" cmp -s "$src/packaging/lockferry.toml" "$root/etc/lockferry/lockferry.toml"
check "the man pages carry the version" grep -q "lockferry [0-9]" "$root/share/man/man8/lockferryd.8"
check "the installed lockferryd accepts the installed configuration" \
  "$root/sbin/lockferryd" --check-config --config "$root/etc/lockferry/lockferry.toml"
if command -v groff >/dev/null; then
  for page in lockferryd lockferry; do
    check "man page $page.8 renders without warnings" \
      sh -c "test -z \"\$(LC_ALL=C.UTF-8 groff -man -ww -z '$root/share/man/man8/$page.8' 2>&1)\""
  done
fi
if command -v systemd-analyze >/dev/null; then
  # verify loads the unit as systemd would (directives, paths, the ExecStart binary); --man=no
  # because the man pages are not on this machine's MANPATH.
  check "systemd-analyze verify accepts the unit" \
    systemd-analyze verify --man=no "$root/lib/systemd/system/lockferryd.service"
fi
echo 'node = "changed-by-the-operator"' >"$root/etc/lockferry/lockferry.toml"
cmake --install "$build" --prefix "$root" >"$tmp/install2.log" 2>&1
check "reinstalling keeps the operator's configuration" grep -q changed-by-the-operator "$root/etc/lockferry/lockferry.toml"
check "... and says so" grep -q "Keeping: $root/etc/lockferry/lockferry.toml" "$tmp/install2.log"

# --- cpack -G DEB -------------------------------------------------------------------------------
command -v dpkg-deb >/dev/null || skip "dpkg-deb missing"
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg") >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; fail "cpack -G DEB"; finish; }
deb=$(ls "$tmp"/pkg/lockferry_*.deb 2>/dev/null | head -n 1)
check "cpack built a .deb ($(basename "${deb:-none}"))" test -s "$deb"
[ -s "$deb" ] || finish
dpkg-deb -c "$deb" >"$tmp/contents"
for f in ./usr/sbin/lockferryd ./usr/sbin/lockferry ./usr/lib/systemd/system/lockferryd.service \
         ./etc/lockferry/lockferry.toml ./usr/lib/ocf/resource.d/lockferry/lockferry \
         ./usr/libexec/lockferry/lockferry-notify ./usr/share/man/man8/lockferryd.8 \
         ./usr/share/man/man8/lockferry.8 ./usr/share/lockferry/lockferry.toml \
         ./usr/share/doc/lockferry/copyright; do
  check "the .deb holds $f" grep -q " $f\$" "$tmp/contents"
done
check "the .deb installs nothing under /usr/local or a build path" sh -c "! grep -E ' \\./(usr/local|tmp|work)' '$tmp/contents'"
check "files in the .deb belong to root" sh -c "! awk '{print \$2}' '$tmp/contents' | grep -v '^root/root\$'"
depends=$(dpkg-deb -f "$deb" Depends)
check "Depends has nfs-common ($depends)" grep -q "nfs-common" <<<"$depends"
check "Depends has the shared libraries (libbpf)" grep -q "libbpf" <<<"$depends"
check "Depends has the shared libraries (libsystemd)" grep -q "libsystemd" <<<"$depends"
mkdir -p "$tmp/control" && dpkg-deb -e "$deb" "$tmp/control"
check "the configuration is a conffile" grep -qx "/etc/lockferry/lockferry.toml" "$tmp/control/conffiles"
for s in postinst prerm postrm; do check "maintainer script $s is executable" test -x "$tmp/control/$s"; done
check "postinst does not start or enable lockferryd (configure first)" \
  sh -c "! grep -v '^ *#' '$tmp/control/postinst' | grep -q 'systemctl start\\|systemctl enable'"

# Unpacked into a temp root (dpkg -x, not dpkg -i): the unit names /usr/sbin, the binaries run
# and the shipped configuration checks out.
dpkg-deb -x "$deb" "$tmp/x"
check "the packaged unit starts /usr/sbin/lockferryd" grep -qx "ExecStart=/usr/sbin/lockferryd --config /etc/lockferry/lockferry.toml" "$tmp/x/usr/lib/systemd/system/lockferryd.service"
check "the packaged lockferry runs" sh -c "'$tmp/x/usr/sbin/lockferry' version | grep -q '^lockferry '"
check "the packaged lockferryd accepts the packaged configuration" \
  "$tmp/x/usr/sbin/lockferryd" --check-config --config "$tmp/x/etc/lockferry/lockferry.toml"
check "the packaged OCF agent answers meta-data" sh -c "'$tmp/x/usr/lib/ocf/resource.d/lockferry/lockferry' meta-data | grep -q '<resource-agent name=\"lockferry\"'"
check "the packaged notify script answers --help" "$tmp/x/usr/libexec/lockferry/lockferry-notify" --help
finish
