#!/usr/bin/env bash
# Installs what the tests need and runs every test: formatting, lints, unit tests, golden
# fixtures, property tests, the end-to-end tests that boot systemd nodes in namespaces, and the
# host image (os/build.sh) booted under qemu.
# Run as root on Debian 12 from anywhere: tests/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/deps.sh
flotilla_install_deps

if [ "$(id -u)" -ne 0 ]; then
  echo "flotilla: the end-to-end tests boot systemd in namespaces and need root" >&2
  exit 1
fi

step() { echo; echo "==> $*"; }
step "format";  cargo fmt --all -- --check
step "build";   cargo build --workspace --bins --locked
step "os image"; FLOTILLA_BIN_DIR="${CARGO_TARGET_DIR:-target}/debug" os/build.sh
step "lint";    cargo clippy --workspace --all-targets --locked -- -D warnings
step "test";    cargo test --workspace --locked
