#!/usr/bin/env bash
# Makes a Debian bookworm minbase root filesystem tar with debootstrap, from the
# Debian mirror this machine's apt uses. Usage: debian-rootfs.sh OUT.tar
# Needs root and the debootstrap package (apt-get install debootstrap); takes
# about half a minute. Exits 3 when the mirror cannot be reached.
set -euo pipefail
out=${1:?usage: $0 OUT.tar}
suite=${DEBIAN_SUITE:-bookworm}
command -v debootstrap >/dev/null || { echo "needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }
# The mirror apt is configured with (deb822 or one-line sources), else deb.debian.org.
mirror=${DEBIAN_MIRROR:-$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' ;
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } 2>/dev/null | grep -v -- '-security' | head -n1 || true
)}
mirror=${mirror:-http://deb.debian.org/debian}
if ! timeout 15 bash -c "exec 3<>/dev/tcp/$(echo "$mirror" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')/80" 2>/dev/null; then
  echo "the Debian mirror $mirror is unreachable" >&2
  exit 3
fi
dir=$(mktemp -d /tmp/tsbuild-debootstrap-XXXXXX)
trap 'rm -rf "$dir"' EXIT
debootstrap --variant=minbase --no-check-gpg "$suite" "$dir/rootfs" "$mirror" >"$dir/log" 2>&1 || { tail -n 20 "$dir/log" >&2; exit 1; }
r=$dir/rootfs
# What a container base image leaves out or sets differently.
printf 'deb %s %s main\n' "$mirror" "$suite" > "$r/etc/apt/sources.list"
# Snapshot mirrors serve Release files past their Valid-Until date.
printf 'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n' > "$r/etc/apt/apt.conf.d/99snapshot"
printf 'APT::Install-Recommends "false";\n' > "$r/etc/apt/apt.conf.d/99no-recommends"
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* "$r"/var/log/* "$r"/tmp/* "$r"/dev/* "$r"/proc/* "$r"/sys/*
: > "$r/etc/resolv.conf"; : > "$r/etc/hostname"
tar --numeric-owner --xattrs --sort=name -C "$r" -cf "$out" .
