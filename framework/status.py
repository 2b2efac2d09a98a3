"""The framework's status as a JSON document and a small HTML page. Never contains a secret:
it is built from task records, decline reasons and fingerprints, never from property values."""

from __future__ import annotations

import html
import time
from typing import Any

from framework.scheduler_core import SchedulerCore
from framework.spec import Role

STATUS_FORMAT = 1


def status_document(core: SchedulerCore, *, mesos_master: str, started_at: float) -> dict[str, Any]:
    spec = core.spec
    masters = [h for h in core.state.master_hosts if h]
    return {
        "format": STATUS_FORMAT,
        "generated_at": time.time(),
        "framework": {
            "id": core.state.framework_id,
            "name": spec.framework_name,
            "connected": core.connected,
            "mesos_master": mesos_master,
            "role": spec.role,
            "principal": spec.principal,
            "started_at": started_at,
        },
        "phase": core.phase(),
        "reconciled": core.reconciled,
        "spec_hash": core.factory.spec_hash(),
        "worker_target": "all eligible agents" if spec.worker_count is None else spec.worker_count,
        "master_hosts": core.state.master_hosts,
        "worker_hosts": sorted(core.state.worker_hosts),
        "masters_ready": core.masters_ready(),
        "alluxio": {
            "master_web_urls": [f"http://{h}:{spec.master_web_port}/" for h in masters],
            "master_rpc_addresses": [f"{h}:{spec.master_rpc_port}" for h in masters],
        },
        "tasks": core.tasks_view(),
        "waiting": core.waiting_slots(),
        "declines": [
            {
                "agent_id": e.agent_id,
                "hostname": e.hostname,
                "reason": e.reason,
                "line": e.line(),
                "count": e.count,
                "first_seen": e.first_seen,
                "last_seen": e.last_seen,
            }
            for e in core.declines.entries()[:50]
        ],
        "reload_error": core.reload_error,
        "counters": dict(core.counters),
        "recent_events": list(core.history)[-30:],
        "ports": {
            Role.MASTER.value: sorted(spec.master_ports().values()),
            Role.WORKER.value: sorted(spec.worker_ports().values()),
        },
    }


def _cell(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def render_html(doc: dict[str, Any]) -> str:
    framework = doc["framework"]
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{_cell(task[k])}</td>"
            for k in ("role", "host", "state", "task_id", "config_current", "message")
        )
        + "</tr>"
        for task in doc["tasks"]
    )
    declines = "".join(f"<li>{_cell(d['line'])} (x{d['count']})</li>" for d in doc["declines"])
    links = "".join(
        f'<li><a href="{_cell(u)}">{_cell(u)}</a></li>' for u in doc["alluxio"]["master_web_urls"]
    )
    events = "".join(f"<li>{_cell(e)}</li>" for e in reversed(doc["recent_events"]))
    reload_error = f"<p><b>{_cell(doc['reload_error'])}</b></p>" if doc["reload_error"] else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>alluxio-mesos: {_cell(framework["name"])}</title>
<meta http-equiv="refresh" content="10">
<style>body{{font-family:sans-serif;margin:1.5em}}td,th{{border:1px solid #ccc;padding:2px 6px}}
table{{border-collapse:collapse}}</style></head><body>
<h1>alluxio-mesos: {_cell(framework["name"])}</h1>
<p>phase <b>{_cell(doc["phase"])}</b>; framework id {_cell(framework["id"])};
connected {_cell(framework["connected"])} to {_cell(framework["mesos_master"])};
spec {_cell(doc["spec_hash"])} (<a href="status.json">status.json</a>)</p>
{reload_error}
<h2>Alluxio masters</h2><ul>{links or "<li>none placed yet</li>"}</ul>
<h2>Tasks</h2><table><tr><th>role</th><th>host</th><th>state</th><th>task</th><th>config current</th>
<th>message</th></tr>{rows}</table>
<h2>Why offers were not used</h2><ul>{declines or "<li>none</li>"}</ul>
<h2>Recent events</h2><ul>{events}</ul>
</body></html>
"""
