#!/usr/bin/env bash
# Makes an offline base image rootfs from Debian's busybox-static: busybox, its
# applet links, /etc/passwd and /etc/group. Usage: busybox-rootfs.sh OUT.tar
set -euo pipefail
out=${1:?usage: $0 OUT.tar}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "needs busybox-static (apt-get install busybox-static)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,etc,tmp,root,home/app} && chmod 1777 "$dir/tmp" && chmod 700 "$dir/root"
cp "$busybox" "$dir/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n' > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\n' > "$dir/etc/group"
chown 1000:1000 "$dir/home/app"
# Fixed times and owners: the same busybox gives the same layer, hence the same image ID.
find "$dir" -exec touch -h -d '2024-01-01T00:00:00Z' {} +
tar --numeric-owner --sort=name -C "$dir" -cf "$out" .
