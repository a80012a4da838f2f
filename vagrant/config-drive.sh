#!/bin/sh
# Makes a config drive for the flotilla host image: a FAT image labelled FLOTILLA holding
# CONFIG as flotilla.toml (no root, no loop device: dosfstools and mtools).
#   vagrant/config-drive.sh CONFIG OUT.img
set -eu
config=$1
out=$2
rm -f "$out"
mkfs.vfat -n FLOTILLA -C "$out" 1440 >/dev/null
mcopy -i "$out" "$config" ::flotilla.toml
