"""A local multi-host Mesos cluster on one machine: one Linux network namespace per "host".

Alluxio binds fixed ports (master 19998/19999/19200, worker 29998-30000), so several workers
cannot share one network namespace. Each host here is a network namespace joined to a bridge in
the root namespace; a stand-in Mesos agent runs inside it (and with it the executors and JVMs it
starts), while the stand-in master and an HTTP file server run in the root namespace on the
bridge address. Mount namespaces are NOT separated: the workers' tmpfs ramdisks stay visible to
the tests. See `cluster.LocalCluster` for the entry point.
"""

from sandbox.localcluster.cluster import ClusterHost, HostSpec, LocalCluster, local_cluster
from sandbox.localcluster.errors import ClusterError
from sandbox.localcluster.stale import clean_stale_clusters

__all__ = [
    "ClusterError",
    "ClusterHost",
    "HostSpec",
    "LocalCluster",
    "clean_stale_clusters",
    "local_cluster",
]
