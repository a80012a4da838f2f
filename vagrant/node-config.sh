#!/bin/sh
# Prints the first-boot configuration of node INDEX (1-based) of a cluster of NUM_INSTANCES:
#   vagrant/node-config.sh INDEX NUM_INSTANCES [SSH_PUBLIC_KEY_FILE]
# The one source of every node's configuration: the Vagrantfile writes it to each node's config
# drive, the tests boot the image with it and check it with flotilla-firstboot's parser.
# Node i is core-0i at 10.240.8.(100+i) on eth1 (the private network); the first three are etcd
# members of one initial cluster, the others etcd clients of them.
set -eu
index=$1
count=$2
key_file=${3:-}
[ "$index" -ge 1 ] && [ "$index" -le "$count" ] || { echo "node-config.sh: INDEX must be 1..$count" >&2; exit 2; }
subnet=${FLOTILLA_SUBNET:-10.240.8}
name=$(printf 'core-%02d' "$index")
ip="$subnet.$((100 + index))"
members=$((count < 3 ? count : 3))

list() { # list FORMAT: the members' values, as a TOML array
  i=1; sep=""; printf '['
  while [ "$i" -le "$members" ]; do
    printf "%s\"$1\"" "$sep" "$(printf 'core-%02d' "$i")" "$subnet.$((100 + i))"
    sep=", "; i=$((i + 1))
  done
  printf ']'
}

echo "# first boot of $name (node $index of $count), from vagrant/node-config.sh"
echo "hostname = \"$name\""
if [ -n "$key_file" ]; then
  echo "ssh_authorized_keys = [\"$(head -n1 "$key_file")\"]"
fi
echo
echo "[metadata]"
if [ "$index" -le "$members" ]; then echo 'role = "etcd"'; else echo 'role = "worker"'; fi
if [ "$index" -eq 1 ]; then echo 'disk = "ssd"'; else echo 'disk = "hdd"'; fi
echo "name = \"$name\""
echo
echo "[etcd]"
if [ "$index" -le "$members" ]; then
  echo 'role = "member"'
  echo "name = \"$name\""
  echo "peer_urls = [\"http://$ip:2380\"]"
  echo "client_urls = [\"http://$ip:2379\"]"
  echo "initial_cluster = $(list '%s=http://%s:2380')"
else
  echo 'role = "client"'
  echo "endpoints = $(list '%.0shttp://%s:2379')"
fi
echo
echo "[flotilla]"
echo "public_ip = \"$ip\""
echo
echo "[[interfaces]]"
echo 'name = "eth1"'
echo "addresses = [\"$ip/24\"]"
