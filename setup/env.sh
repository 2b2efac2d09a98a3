# Environment shared by `make` targets, the setup steps and the tests. Source it; it only exports.
# Everything heavy lives in a versioned cache outside the repository so reruns and fresh clones
# on the same machine reuse it.
_repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ALLUXIO_MESOS_REPO="$_repo_root"
export ALLUXIO_MESOS_CACHE="${ALLUXIO_MESOS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alluxio-mesos}"
export ALLUXIO_MESOS_VENV="${ALLUXIO_MESOS_VENV:-$_repo_root/.venv}"
# shellcheck source=setup/versions.sh
. "$_repo_root/setup/versions.sh"
export ALLUXIO_VERSION

# The pulumi SDK pin in pyproject.toml is the single source of the engine version.
PULUMI_VERSION="$(sed -n 's/^ *"pulumi==\([0-9.]*\)".*/\1/p' "$_repo_root/pyproject.toml" | head -n1)"
export PULUMI_VERSION
export ALLUXIO_MESOS_PULUMI_BIN="$ALLUXIO_MESOS_CACHE/pulumi/v$PULUMI_VERSION/bin"

# Pulumi runs fully offline: local file backend, no update checks, no plugin downloads, and the
# language host and dynamic providers both use the project's virtualenv (Pulumi.yaml names it).
export PULUMI_HOME="${PULUMI_HOME:-$ALLUXIO_MESOS_CACHE/pulumi-home}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$_repo_root/.pulumi-state}"

# testcontainers: no registry is reachable, so no Ryuk reaper image and never pull.
export TESTCONTAINERS_RYUK_DISABLED=true

# The Python 3.9 the executor tests run the bundle on, as chosen by setup/steps/python39.sh
# (a value set by hand wins).
if [[ -z "${ALLUXIO_MESOS_PYTHON39:-}" && -s "$ALLUXIO_MESOS_CACHE/python39.path" ]]; then
  ALLUXIO_MESOS_PYTHON39="$(<"$ALLUXIO_MESOS_CACHE/python39.path")"
  export ALLUXIO_MESOS_PYTHON39
fi

export PATH="$ALLUXIO_MESOS_VENV/bin:$ALLUXIO_MESOS_PULUMI_BIN:$PATH"
unset _repo_root
