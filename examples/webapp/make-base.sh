#!/bin/sh
# A small busybox root filesystem for the example's base image, made locally from Debian's
# busybox-static (no registry).  Usage: make-base.sh OUT.tar
set -eu
out=${1:?usage: make-base.sh OUT.tar}
r=$(mktemp -d); chmod 755 "$r"
trap 'rm -rf "$r"' EXIT
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/var/www" "$r/home"
cp /bin/busybox "$r/bin/busybox"
chroot "$r" /bin/busybox --install -s /bin
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"
printf 'root:x:0:\n' > "$r/etc/group"
printf 'Welcome to a busybox base image.\n' > "$r/etc/motd"
printf 'busybox base \\n \\l\n' > "$r/etc/issue"
chmod 1777 "$r/tmp"
chmod 700 "$r/root"
tar --numeric-owner --sort=name -C "$r" -cf "$out" .
