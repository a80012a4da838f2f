#!/usr/bin/env bash
# Builds the flotilla host OS from Debian 12 packages (as root): os/build.sh
#
# Outputs in os/out/ (FLOTILLA_OS_OUT): rootfs/ and rootfs.tar.zst (the whole tree), disk.raw and
# disk.qcow2 (GPT: BIOS boot partition with GRUB, /usr as erofs read-only, / as ext4 with /etc,
# /var and /boot), and flotilla.box (Vagrant, libvirt provider). The debootstrapped base is cached
# in os/out/cache/ under a hash of the package list, so a rebuild only reinstalls flotilla.
#
# The flotilla binaries come from FLOTILLA_BIN_DIR when set (e.g. target/debug, as the tests do),
# else from `cargo build --release` into CARGO_TARGET_DIR (default target/).
# DISK_SIZE (default 4G) is the disk's virtual size; FLOTILLA_MIRROR the Debian mirror (default:
# the one apt uses here).
set -euo pipefail

OS_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$OS_DIR")
OUT=${FLOTILLA_OS_OUT:-$OS_DIR/out}
CACHE=$OUT/cache
SUITE=bookworm
DISK_SIZE=${DISK_SIZE:-4G}
PACKAGES=(
  systemd systemd-sysv udev dbus kmod util-linux procps ca-certificates
  linux-image-amd64 initramfs-tools
  etcd-server etcd-client nftables iproute2 openssh-server curl
)
BINARIES=(flotillad flotctl flotilla flotilla-firstboot)
GENERATOR=flotilla-generator
# GPT layout in 512-byte sectors: BIOS boot (GRUB's core.img), /usr (erofs), / (ext4, the rest).
BIOS_START=2048
USR_START=4096
USR_SECTORS=$((1536 * 2048)) # 1.5 GiB: room for a bigger /usr in a later image

log() { echo "os/build.sh: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, file ownership in the images)"
for tool in debootstrap mkfs.erofs mkfs.ext4 sfdisk grub-mkimage qemu-img zstd perl; do
  command -v "$tool" >/dev/null || die "$tool is missing: install debootstrap erofs-utils e2fsprogs fdisk grub-pc-bin qemu-utils zstd"
done
[ -f /usr/lib/grub/i386-pc/boot.img ] || die "/usr/lib/grub/i386-pc is missing: install grub-pc-bin"

mirror() {
  if [ -n "${FLOTILLA_MIRROR:-}" ]; then echo "$FLOTILLA_MIRROR"; return; fi
  local uri
  uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    | grep -E 'debian/?( |$)' | head -1 | sed -E 's/^URIs: *//; s/^deb (\[[^]]*\] )?//; s/ .*//')
  echo "${uri:-http://deb.debian.org/debian}"
}

# A command in the tree at $1 with /proc, /sys and /dev of the host (unmounted when it returns).
in_root() {
  local root=$1; shift
  mount -t proc proc "$root/proc"
  mount --bind /dev "$root/dev"
  mount -t sysfs sysfs "$root/sys"
  local status=0
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@" || status=$?
  umount "$root/sys" "$root/dev" "$root/proc"
  return $status
}

# The debootstrapped base as a cached tarball; prints its path.
base_tarball() {
  local mirror key tarball work
  mirror=$(mirror)
  key=$(printf '%s\n' "$SUITE" "$mirror" "${PACKAGES[@]}" | sha256sum | cut -c1-16)
  tarball=$CACHE/base-$SUITE-$key.tar.zst
  if [ ! -f "$tarball" ]; then
    log "debootstrap $SUITE from $mirror (cached as $tarball)"
    mkdir -p "$CACHE/debs"
    work=$(mktemp -d "$CACHE/base.XXXXXX")
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" \
      --include="$(IFS=,; echo "${PACKAGES[*]}")" "$SUITE" "$work" "$mirror" >&2
    rm -rf "$work/var/cache/apt/archives/"*.deb "$work/var/lib/apt/lists/"*_Packages
    tar -C "$work" --numeric-owner --xattrs -cf - . | zstd -q -T0 -3 -o "$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    rm -rf "$work"
  fi
  echo "$tarball"
}

binaries_dir() {
  if [ -n "${FLOTILLA_BIN_DIR:-}" ]; then echo "$FLOTILLA_BIN_DIR"; return; fi
  log "cargo build --release (agent, unitgen)"
  (cd "$REPO" && cargo build --release --locked -p agent -p unitgen --bins >&2)
  echo "${CARGO_TARGET_DIR:-$REPO/target}/release"
}

# Installs flotilla and the image's configuration into the tree at $1.
configure() {
  local root=$1 bins=$2 name
  for name in "${BINARIES[@]}"; do
    [ -x "$bins/$name" ] || die "$bins/$name is missing: build the workspace's binaries first"
    install -m 0755 "$bins/$name" "$root/usr/bin/$name"
  done
  [ -x "$bins/$GENERATOR" ] || die "$bins/$GENERATOR is missing"
  install -D -m 0755 "$bins/$GENERATOR" "$root/usr/lib/systemd/system-generators/$GENERATOR"
  install -m 0644 "$REPO/agent/systemd/flotilla.service" "$REPO/agent/systemd/flotilla-boot.service" \
    "$OS_DIR/systemd/flotilla-firstboot.service" "$root/usr/lib/systemd/system/"
  cp -a "$OS_DIR/files/." "$root/"
  mkdir -p "$root/etc/flotilla" "$root/var/lib/flotilla" "$root/var/log/journal"
  # A machine ID of its own for every machine, and first-boot semantics (ConditionFirstBoot).
  echo uninitialized >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
  grep -qx erofs "$root/etc/initramfs-tools/modules" || echo erofs >>"$root/etc/initramfs-tools/modules"
  systemctl --root="$root" preset-all >/dev/null 2>&1
  systemctl --root="$root" disable etcd.service ssh.service >/dev/null 2>&1
  in_root "$root" update-initramfs -u -k all >/dev/null
  # /etc as shipped: the factory defaults in /usr, from which a machine's /etc is made.
  rm -rf "$root/usr/share/flotilla/factory"
  mkdir -p "$root/usr/share/flotilla/factory"
  cp -a "$root/etc" "$root/usr/share/flotilla/factory/etc"
}

# GRUB for BIOS on the GPT disk $1: core.img in the BIOS boot partition, boot.img in the MBR,
# patched as grub-bios-setup would (done by hand: grub-bios-setup is in grub-pc, which would take
# over the build host's boot loader).
install_grub() {
  local disk=$1 core=$2 sectors
  grub-mkimage -O i386-pc -o "$core" -p '(hd0,gpt3)/boot/grub' \
    biosdisk part_gpt ext2 normal linux echo serial terminal test configfile search
  sectors=$(( ($(stat -c %s "$core") + 511) / 512 ))
  [ "$sectors" -le $((USR_START - BIOS_START)) ] || die "core.img ($sectors sectors) does not fit the BIOS boot partition"
  put() { perl -e "print pack('$2', $3)" | dd of="$1" bs=1 seek="$4" conv=notrunc status=none; }
  # core.img's first sector loads the rest: blocklist start (u64) and length (u16) at 0x1f4.
  put "$core" 'Q<' $((BIOS_START + 1)) $((0x1f4))
  put "$core" 'v' $((sectors - 1)) $((0x1fc))
  dd if="$core" of="$disk" bs=512 seek=$BIOS_START conv=notrunc status=none
  # boot.img: the first 440 bytes of the MBR (the partition table stays), core.img's sector.
  dd if=/usr/lib/grub/i386-pc/boot.img of="$disk" bs=440 count=1 conv=notrunc status=none
  put "$disk" 'Q<' $BIOS_START $((0x5c))
  put "$disk" 'C' 255 $((0x64))
}

disk_images() {
  local rootfs=$1 work=$2 disk=$OUT/disk.raw total root_start root_sectors
  log "images: /usr as erofs, / as ext4"
  mkfs.erofs -zlz4hc --quiet "$work/usr.erofs" "$rootfs/usr" >/dev/null
  [ $(( $(stat -c %s "$work/usr.erofs") / 512 )) -le $USR_SECTORS ] || die "/usr does not fit its partition"
  mkdir -p "$work/root"
  # / holds no /usr and, of /etc, fstab alone: the initramfs makes the rest from the factory copy
  # in /usr at first boot (usr/share/initramfs-tools/scripts/init-bottom/flotilla-etc).
  tar -C "$rootfs" --exclude='./usr/*' --exclude='./etc/*' -cf - . | tar -C "$work/root" -xf -
  cp -a "$rootfs/etc/fstab" "$work/root/etc/fstab"
  rm -f "$disk"
  truncate -s "$DISK_SIZE" "$disk"
  total=$(( $(stat -c %s "$disk") / 512 ))
  root_start=$((USR_START + USR_SECTORS))
  root_sectors=$(( (total - 34 - root_start) / 2048 * 2048 ))
  sfdisk --quiet "$disk" <<EOF
label: gpt
start=$BIOS_START, size=$((USR_START - BIOS_START)), type=21686148-6453-6F6E-744E-656564454649, name=bios-boot
start=$USR_START, size=$USR_SECTORS, type=8484680C-9521-48C6-9C11-B0720656F69E, name=flotilla-usr
start=$root_start, size=$root_sectors, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=flotilla-root
EOF
  dd if="$work/usr.erofs" of="$disk" bs=1M seek=$((USR_START * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
  mkfs.ext4 -q -F -L flotilla-root -d "$work/root" -E offset=$((root_start * 512)) "$disk" $((root_sectors / 2))k
  install_grub "$disk" "$work/core.img"
  qemu-img convert -f raw -O qcow2 "$disk" "$OUT/disk.qcow2"
}

vagrant_box() {
  local work=$1 gib
  gib=$(( ($(stat -c %s "$OUT/disk.raw") + (1 << 30) - 1) >> 30 ))
  mkdir -p "$work/box"
  printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$gib" >"$work/box/metadata.json"
  cp "$OS_DIR/box/Vagrantfile" "$work/box/Vagrantfile"
  ln "$OUT/disk.qcow2" "$work/box/box.img"
  tar -C "$work/box" -cf "$OUT/flotilla.box.tmp" metadata.json Vagrantfile box.img
  mv "$OUT/flotilla.box.tmp" "$OUT/flotilla.box"
}

work=""
main() {
  local started=$SECONDS tarball bins
  mkdir -p "$CACHE"
  tarball=$(base_tarball)
  bins=$(binaries_dir)
  work=$(mktemp -d "$OUT/work.XXXXXX")
  trap 'rm -rf "${work:?}"' EXIT
  log "root filesystem in $OUT/rootfs"
  rm -rf "$OUT/rootfs"
  mkdir -p "$OUT/rootfs"
  zstd -q -d -c "$tarball" | tar -C "$OUT/rootfs" --numeric-owner --xattrs -xf -
  configure "$OUT/rootfs" "$bins"
  tar -C "$OUT/rootfs" --numeric-owner --xattrs -cf - . | zstd -q -T0 -3 -f -o "$OUT/rootfs.tar.zst"
  disk_images "$OUT/rootfs" "$work"
  vagrant_box "$work"
  log "done in $((SECONDS - started))s: $(cd "$OUT" && du -h --apparent-size rootfs.tar.zst disk.qcow2 flotilla.box | tr '\t\n' ' ')"
}

main "$@"
