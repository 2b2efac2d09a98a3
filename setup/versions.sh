# Versions of the real parts the setup installs. The Pulumi engine version is not here: it is
# derived from the pulumi SDK pin in pyproject.toml so the two can never drift apart.
ALLUXIO_VERSION=2.9.6
HTTP_PARSER_VERSION=0.9.0
# sha256 of the http-parser 0.9.0 sdist on PyPI; the pure-Python wheel is built from exactly this.
HTTP_PARSER_SDIST_SHA256=441d3a57c6227230f98aa97539da006fda0f8f4880bc4c5cd895ff2138a52621
DEBIAN_SUITE=bookworm
