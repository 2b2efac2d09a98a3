"""The Alluxio Mesos executor. Runs on agents' stock Python 3.9+: standard library and pymesos only."""

__version__ = "0.1.0"
