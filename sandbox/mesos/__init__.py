"""A single-machine stand-in for Apache Mesos (master and agent) speaking the v1 HTTP APIs.

Used by the tests and by `make up`; never imported by the product packages.
"""

MESOS_VERSION = "1.11.0"
"""The Mesos version the stand-in claims to be (GET /version, /master/state)."""
