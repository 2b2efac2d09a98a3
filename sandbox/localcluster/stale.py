"""Find and remove the leftovers of local clusters whose owner process is gone (a crashed or
killed test run), recognised by the `amc<tag>` prefix of their names."""

from __future__ import annotations

import logging

from sandbox.localcluster import hosts_file, network, registry
from sandbox.localcluster.names import BASE_DIR_PREFIX, BASE_DIR_ROOT, tag_of
from sandbox.localcluster.teardown import destroy_cluster

LOG = logging.getLogger("sandbox.localcluster")


def _tags_on_this_machine() -> set[str]:
    names: list[str] = []
    names += network.list_netns()
    names += network.list_links()
    names += [c.rsplit(" ", 1)[-1] for c in network.firewall_comments()]
    names += hosts_file.clusters_with_blocks()
    names += [p.name.removeprefix(BASE_DIR_PREFIX) for p in BASE_DIR_ROOT.glob(f"{BASE_DIR_PREFIX}*")]
    names += [r.names.cluster for r in registry.read_records()]
    return {tag for tag in map(tag_of, names) if tag}


def clean_stale_clusters() -> dict[str, list[str]]:
    """Destroy every cluster whose owner is not alive; returns {tag: problems} of those removed."""
    removed: dict[str, list[str]] = {}
    with registry.registry_lock():
        live = {r.tag for r in registry.read_records() if registry.owner_alive(r)}
        for tag in sorted(_tags_on_this_machine() - live):
            problems = destroy_cluster(tag)
            LOG.warning("removed stale local cluster amc%s%s", tag, f": {problems}" if problems else "")
            removed[tag] = problems
    return removed
