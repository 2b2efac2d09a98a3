#!/bin/sh
# Turns a freshly debootstrapped tree (argument 1) into the image's base layer. Runs on the build
# machine before the tree is archived, so nothing removed here ever reaches an image layer.
set -eu
root="${1:?usage: finish-rootfs.sh ROOTFS}"
[ -x "$root/usr/sbin/sshd" ] || { echo "finish-rootfs.sh: $root has no /usr/sbin/sshd; is it a debootstrapped tree?" >&2; exit 2; }

# openssh-server's postinst generated host keys; each container must make its own.
rm -f "$root"/etc/ssh/ssh_host_*
# Package caches and indexes: large, and stale the moment the image is built.
find "$root/var/cache/apt/archives" -maxdepth 1 -type f -name '*.deb' -delete
rm -f "$root"/var/cache/apt/*.bin
find "$root/var/lib/apt/lists" -maxdepth 1 -type f -delete
# Build-time logs and identity.
rm -f "$root"/var/log/dpkg.log "$root"/var/log/alternatives.log "$root"/var/log/bootstrap.log
rm -rf "$root"/var/log/apt/*
rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
# Documentation, manual pages and translations (about 60 MB): nobody reads them in a sandbox host.
# Copyright files stay. The dpkg rule keeps packages installed later inside a host small too.
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
cat >"$root/etc/dpkg/dpkg.cfg.d/alluxio-mesos-nodoc" <<'RULES'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
RULES
# Services must not start when a package is installed inside a container (there is no init).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
