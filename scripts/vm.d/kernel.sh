# SPDX-License-Identifier: Apache-2.0
# The guest kernel and initramfs of scripts/vm, cached per kernel release. Each function prints
# its result on stdout, or the reason it failed (and returns 1); tool output goes to stderr.

# The modules the initramfs loads to reach the host root (the rest load from /lib/modules later).
vm_boot_modules=(virtio_pci 9pnet_virtio 9p overlay)

# The release Debian's linux-image-amd64 depends on (the current generic kernel of the release
# this machine follows); without package lists, the newest one already in the cache.
default_kernel() {
  local cache=$1 deps
  deps=$(apt-cache depends linux-image-amd64 2>/dev/null || true)
  if [[ $deps =~ Depends:\ linux-image-([0-9][^[:space:]]*) ]]; then
    echo "${BASH_REMATCH[1]}"
    return 0
  fi
  local cached
  cached=$(find "$cache" -mindepth 2 -maxdepth 2 -name .complete -printf '%h\n' 2>/dev/null | sort -V | tail -n1)
  if [ -n "$cached" ]; then
    basename "$cached"
    return 0
  fi
  echo "apt-cache knows no linux-image-amd64 (run apt-get update) and $cache has no kernel; set LOCKFERRY_VM_KERNEL"
  return 1
}

# Unpacks linux-image-<release> into <cache>/<release> once (dpkg-deb -x, depmod -b; nothing is
# installed on this machine) and prints that directory.
fetch_kernel() {
  local cache=$1 release=$2
  local dir=$cache/$release
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -f "$dir/.complete" ]; then
    local work
    work=$(mktemp -d "$cache/.fetch.XXXXXX")
    if ! download_kernel "$work" "linux-image-$release" >&2; then
      rm -rf "$work"
      echo "cannot download linux-image-$release (apt-get download failed, see above)"
      return 1
    fi
    rm -rf "$dir"
    if ! { dpkg-deb -x "$work"/linux-image-*.deb "$work/root" && rm -f "$work"/*.deb &&
      [ -f "$work/root/boot/vmlinuz-$release" ] && depmod -b "$work/root" "$release" &&
      mv "$work/root" "$dir" && touch "$dir/.complete"; } >&2; then
      rm -rf "$work"
      echo "cannot unpack linux-image-$release into $dir"
      return 1
    fi
    rm -rf "$work"
    echo "vm: kernel $release unpacked into $dir" >&2
  fi
  flock -u 9
  echo "$dir"
}

# apt-get download, once more after apt-get update when the lists name a version the mirror
# dropped (a new kernel ABI replaces the old package).
download_kernel() {
  local work=$1 package=$2
  # -o APT::Sandbox::User=root: the download directory is root's; _apt could not write there.
  (cd "$work" && apt-get -q -o APT::Sandbox::User=root download "$package") && return 0
  apt-get -q update && (cd "$work" && apt-get -q -o APT::Sandbox::User=root download "$package")
}

# Builds (once per kernel and content) an initramfs of busybox-static, the boot modules in load
# order and vm.d/init, and prints its path.
build_initramfs() {
  local kdir=$1 release=$2 init=$3
  local order
  order=$(modprobe -d "$kdir" -S "$release" --show-depends -a "${vm_boot_modules[@]}" 2>&1) || {
    echo "modules of $release: $order"
    return 1
  }
  # Each module once, in the first order modprobe named it (it repeats shared dependencies).
  local -a kos=()
  mapfile -t kos < <(awk '$1 == "insmod" && !seen[$2]++ { print $2 }' <<<"$order")
  local key
  key=$(cat "$init" /bin/busybox "${kos[@]}" | sha256sum | cut -c1-16)
  local out=$kdir/initramfs-$key.cpio.gz
  [ -f "$out" ] && { echo "$out"; return 0; }
  local stage
  stage=$(mktemp -d "$kdir/.initramfs.XXXXXX")
  mkdir -p "$stage"/{bin,dev,proc,sys,modules} && : >"$stage/modules/load-order"
  cp /bin/busybox "$stage/bin/busybox"
  cp "$init" "$stage/init" && chmod 755 "$stage/init"
  # The kernel opens /dev/console for init before init can mount devtmpfs.
  mknod "$stage/dev/console" c 5 1
  local ko
  for ko in "${kos[@]}"; do
    cp "$ko" "$stage/modules/" && basename "$ko" >>"$stage/modules/load-order"
  done
  if ! (cd "$stage" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$out.tmp"); then
    rm -rf "$stage" "$out.tmp"
    echo "cannot build the initramfs in $kdir"
    return 1
  fi
  rm -rf "$stage"
  mv "$out.tmp" "$out"
  echo "$out"
}
