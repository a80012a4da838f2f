#!/usr/bin/env bash
# The main job, until the cluster lands: checks the seed units with `flotctl verify` and shows
# what `flotilla-generator` makes of the declarative one.
# Run as root on Debian 12 from anywhere: tests/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/deps.sh
flotilla_install_deps
cargo build --workspace --bins --locked --quiet

echo "==> flotctl verify tests/units/*"
./target/debug/flotctl verify tests/units/*.service tests/units/*.container
echo
echo "==> flotilla-generator --dry-run tests/units/mongo-declarative.container"
./target/debug/flotilla-generator --dry-run tests/units/mongo-declarative.container
