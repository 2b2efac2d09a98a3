"""The stand-in Mesos agent: executors as real processes, the v1 executor API, checkpointing."""
