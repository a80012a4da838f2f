#!/usr/bin/env bash
# Installs the Debian packages flotilla's build and tests need, if any are missing.
# Sourced by tests/test.sh and tests/demo.sh; safe to run again (installs nothing when all are there).
set -euo pipefail

FLOTILLA_DEBS=(
  systemd dbus        # nodes boot systemd as PID 1; systemd-analyze verifies generated units
  util-linux          # unshare, nsenter
  attr                # getfattr: the tests read overlayfs xattrs of unpacked layers
  iproute2            # ip netns for the nodes' network namespaces
  nftables            # nft: the engine's firewall (masquerading, published ports)
  ca-certificates
  # the registry client's tests: a real registry (distribution 2.8) and its htpasswd users, skopeo
  # to push test images, umoci as a peer that unpacks them, busybox-static for the image's root
  # file system, openssl to sign the test token server's JWTs, zstd for zstd layers
  docker-registry apache2-utils skopeo umoci busybox-static openssl zstd
  protobuf-compiler libprotobuf-dev  # etcd-client's build script compiles etcd's protobuf API
  etcd-server etcd-client  # the test cluster's etcd (3.4) and etcdctl to inspect it
  # os/build.sh (the host image) and its boot test: debootstrap, /usr as erofs, GPT on a file,
  # GRUB for BIOS, qcow2, qemu with KVM, the config drive (FAT, made without root)
  debootstrap erofs-utils fdisk grub-pc-bin qemu-utils qemu-system-x86 dosfstools mtools
  # vagrant up of the box (tests/tests/vagrant_up.rs): vagrant-libvirt and a libvirtd the test
  # starts in namespaces of its own (not libvirt-daemon-system: that starts one on the host),
  # dnsmasq for libvirt's networks, ssh for vagrant ssh
  vagrant vagrant-libvirt libvirt-daemon libvirt-daemon-driver-qemu dnsmasq-base openssh-client
)

flotilla_install_deps() {
  local missing=()
  for package in "${FLOTILLA_DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "flotilla: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "flotilla: cargo not found: install a Rust toolchain >= 1.85 (rustup) and run this again" >&2
    exit 1
  fi
}
