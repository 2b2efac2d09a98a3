#!/usr/bin/env bash
# Debian packages the setup itself relies on, and the Python and Go toolchains it builds with.
. "$(dirname "$0")/../lib.sh"
apt_install ca-certificates curl git xz-utils zstd python3-venv util-linux openjdk-17-jdk-headless maven
need_cmd go "install Go 1.23 or newer (Debian: golang-go from bookworm-backports, or the upstream tarball) and put it on PATH"
need_cmd java "install a JDK 11 or 17 (Debian: apt-get install openjdk-17-jdk-headless)"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || fail "python3 is $(python3 -V 2>&1); this project needs Python 3.11 or newer" \
          "install Python 3.11+ and make it the first python3 on PATH"
log "toolchains: $(go version | cut -d' ' -f3), $(python3 -V), java $(java -version 2>&1 | head -n1 | cut -d'"' -f2)"
