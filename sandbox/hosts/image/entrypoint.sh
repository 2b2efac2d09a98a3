#!/bin/sh
# Entrypoint of the sandbox host image (run under tini). Gives this container its own SSH host
# key, authorizes the public key(s) in AUTHORIZED_KEYS for root, then runs sshd in the foreground.
set -eu

die() {
  echo "alluxio-mesos-host: $*" >&2
  exit 64
}

host_key=/etc/ssh/ssh_host_ed25519_key
# Generated here and not at build time so that no two containers share a host identity; kept
# across restarts of the same container so its identity stays stable.
if [ ! -s "$host_key" ] || [ ! -s "$host_key.pub" ]; then
  rm -f "$host_key" "$host_key.pub"
  ssh-keygen -q -t ed25519 -N '' -C "root@$(hostname)" -f "$host_key"
fi

umask 077
mkdir -p /root/.ssh
if [ -n "${AUTHORIZED_KEYS:-}" ]; then
  printf '%s\n' "$AUTHORIZED_KEYS" >/root/.ssh/authorized_keys.new
  if ! ssh-keygen -l -f /root/.ssh/authorized_keys.new >/dev/null 2>&1; then
    rm -f /root/.ssh/authorized_keys.new
    die "AUTHORIZED_KEYS holds no valid SSH public key (expected lines like 'ssh-ed25519 AAAA... comment')"
  fi
  mv /root/.ssh/authorized_keys.new /root/.ssh/authorized_keys
elif [ ! -s /root/.ssh/authorized_keys ]; then
  die "AUTHORIZED_KEYS is not set and /root/.ssh/authorized_keys is empty, so nobody could log in; set AUTHORIZED_KEYS to the SSH public key(s) allowed to log in as root"
fi
unset AUTHORIZED_KEYS
umask 022

# Privilege separation directory; /run is not populated by an init system here.
mkdir -p /run/sshd
chmod 0755 /run/sshd
/usr/sbin/sshd -t || die "sshd rejects its configuration (see the message above)"
exec /usr/sbin/sshd -D -e "$@"
