# Versions of the real parts the setup installs. The Pulumi engine version is not here: it is
# derived from the pulumi SDK pin in pyproject.toml so the two can never drift apart.
ALLUXIO_VERSION=2.9.6
HTTP_PARSER_VERSION=0.9.0
# sha256 of the http-parser 0.9.0 sdist on PyPI; the pure-Python wheel is built from exactly this.
HTTP_PARSER_SDIST_SHA256=441d3a57c6227230f98aa97539da006fda0f8f4880bc4c5cd895ff2138a52621
DEBIAN_SUITE=bookworm
# The Python language host module has no tags: Go names it by the pseudo-version of the commit that
# pulumi's pkg/v<version> tag points to. setup/steps/pulumi.sh derives it from the proxy's
# Origin.Hash of pkg's .info; the proxy does not always report that field (it stopped doing so for
# pkg/v3.163.0 by 2026-12), so the known pseudo-version of each pinned release is kept here and
# checked against the proxy (same commit time as pkg's tag, same commit when Origin is reported).
PULUMI_LANGHOST_PSEUDO_VERSIONS=(
  "3.163.0=v3.0.0-20250417110128-49fb14839a5a"
)
