"""The stand-in Mesos master (python -m sandbox.mesos master)."""
