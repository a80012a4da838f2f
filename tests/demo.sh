#!/usr/bin/env bash
# The main job: boots a local 3-node flotilla cluster (systemd nodes in namespaces, etcd on the
# host, the freshly built agent on every node), starts the example units with flotctl, shows where
# they run and what they print, moves them by killing a machine, and tears everything down.
# Run as root on Debian 12 from anywhere: tests/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/deps.sh
flotilla_install_deps
cargo build --workspace --bins --locked --quiet

echo "==> flotctl verify tests/units/*: the seed units of the fleet tutorial"
./target/debug/flotctl verify tests/units/*.service tests/units/*.container

log=$(mktemp)
./target/debug/flotilla-cluster up --nodes 3 --agents --agent-ttl 5s >"$log" 2>&1 &
up=$!
cleanup() {
  ./target/debug/flotilla-cluster down "$up" >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT
until grep -q '^up (pid' "$log"; do
  if ! kill -0 "$up" 2>/dev/null; then cat "$log"; exit 1; fi
  sleep 0.2
done
cat "$log"
pid_of() { awk -v node="node$1" '$1 == node { print $(NF-2) }' "$log" | head -1; }
on() { local n=$1; shift; echo "node$n\$ $*"; nsenter -t "$(pid_of "$n")" -a "$@"; }

for unit in tests/units/demo/*; do
  nsenter -t "$(pid_of 1)" -a sh -c "mkdir -p /root/units && cat > /root/units/$(basename "$unit")" <"$unit"
done
echo
on 1 flotctl list-machines
echo
on 1 flotctl start /root/units/mongo.service /root/units/employees.service \
  /root/units/hello@1.service /root/units/hello@2.service /root/units/hello@3.service
echo
on 1 flotctl list-units
echo
on 2 flotctl journal --lines 3 employees.service
echo
victim=$(nsenter -t "$(pid_of 1)" -a flotctl list-units --no-legend --full --fields unit,machine \
  | awk '$1 == "mongo.service" { split($2, m, "/"); print m[1] }')
survivor=1
for n in 1 2 3; do
  if [ "$(nsenter -t "$(pid_of "$n")" -a cat /etc/machine-id)" = "$victim" ]; then
    dead=$n
  fi
done
[ "$dead" = 1 ] && survivor=2
echo "==> killing node$dead, which runs mongo.service and employees.service"
kill -9 "$(pid_of "$dead")"
sleep 8
on "$survivor" flotctl list-units
echo
on "$survivor" flotctl destroy mongo.service employees.service hello@1.service hello@2.service hello@3.service
