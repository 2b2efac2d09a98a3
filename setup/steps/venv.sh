#!/usr/bin/env bash
# The project's virtualenv: pinned dependencies, with pymesos's http-parser installed as its
# pure-Python wheel (its Cython extension does not build on Python 3.11).
. "$(dirname "$0")/../lib.sh"
wheels="$ALLUXIO_MESOS_CACHE/wheels"
mkdir -p "$wheels"
hp_wheel="$wheels/http_parser-$HTTP_PARSER_VERSION-py3-none-any.whl"

if [[ ! -x "$ALLUXIO_MESOS_VENV/bin/python" ]]; then
  log "creating virtualenv at $ALLUXIO_MESOS_VENV"
  run "install python3-venv (Debian: apt-get install python3-venv)" -- python3 -m venv "$ALLUXIO_MESOS_VENV"
fi
py="$ALLUXIO_MESOS_VENV/bin/python"
# Reinstall only when the pins change: the stamp is a hash of everything that decides the venv.
stamp="$ALLUXIO_MESOS_VENV/.alluxio-mesos-deps"
deps_hash() { (cat "$ALLUXIO_MESOS_REPO/pyproject.toml" "$ALLUXIO_MESOS_REPO/constraints.txt" "$hp_wheel" 2>/dev/null || true) | sha256sum | cut -d' ' -f1; }
want="$(deps_hash)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$py" -c 'from pymesos import MesosSchedulerDriver' 2>/dev/null; then
  log "virtualenv up to date: $("$py" -V), pulumi SDK $PULUMI_VERSION"
  exit 0
fi
run "check that PyPI is reachable" -- "$py" -m pip install -q --upgrade "pip==25.3" "setuptools==80.9.0" "wheel==0.45.1"

if [[ ! -f "$hp_wheel" ]]; then
  log "building the pure-Python http-parser $HTTP_PARSER_VERSION wheel from its pinned sdist"
  build="$(mktemp -d)"
  trap 'rm -rf "$build"' EXIT
  run "check that PyPI is reachable" -- "$py" -m pip download -q --no-deps --no-binary :all: \
    "http-parser==$HTTP_PARSER_VERSION" -d "$build"
  sdist="$build/http-parser-$HTTP_PARSER_VERSION.tar.gz"
  actual="$(sha256sum "$sdist" | cut -d' ' -f1)"
  [[ "$actual" == "$HTTP_PARSER_SDIST_SHA256" ]] || fail \
    "the http-parser sdist has sha256 $actual, expected $HTTP_PARSER_SDIST_SHA256" \
    "the package index served a different file; do not continue until it is explained"
  tar -xzf "$sdist" -C "$build"
  # The sdist's setup.py exposes run_setup(with_binary); calling it with False builds the
  # package without the C extension, which is exactly the pure-Python parser pymesos falls back to.
  run "see the build output above" -- bash -c "cd '$build/http-parser-$HTTP_PARSER_VERSION' && '$py' -c '
import runpy, sys
sys.argv = [\"setup.py\", \"-q\", \"bdist_wheel\", \"-d\", \"$build/dist\"]
runpy.run_path(\"setup.py\", run_name=\"http_parser_setup\")[\"run_setup\"](False)
'"
  cp "$build/dist/http_parser-$HTTP_PARSER_VERSION-py3-none-any.whl" "$hp_wheel"
fi

log "installing the project and its pinned dependencies"
run "check that PyPI is reachable" -- "$py" -m pip install -q "$hp_wheel"
run "check that PyPI is reachable; see the pip output above" -- \
  "$py" -m pip install -q --find-links "$wheels" -c "$ALLUXIO_MESOS_REPO/constraints.txt" -e "$ALLUXIO_MESOS_REPO[dev]"
"$py" -c 'from pymesos import MesosSchedulerDriver' 2>/dev/null \
  || fail "pymesos does not import in $ALLUXIO_MESOS_VENV" "remove $ALLUXIO_MESOS_VENV and rerun"
deps_hash >"$stamp"
log "virtualenv ready: $("$py" -V), pulumi SDK $PULUMI_VERSION"
