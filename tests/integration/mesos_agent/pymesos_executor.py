"""A custom executor written with unmodified pymesos (MesosExecutorDriver), started by the agent.

What each task does is in its TaskInfo.data (base64 JSON):
  {"action": "finish"}            STARTING, RUNNING, then FINISHED
  {"action": "run"}               STARTING, RUNNING, then waits; KILL -> KILLED
  {"action": "exit", "code": N}   STARTING, RUNNING, then the executor process exits with N
On registration the executor records its environment and working directory in ``executor.json``
in its sandbox; a framework message is echoed back as "echo:<data>".
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
from typing import Any

from pymesos import Executor, MesosExecutorDriver, encode_data


def _status(task_id: dict[str, Any], state: str, message: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"task_id": task_id, "state": state, "timestamp": time.time()}
    if message is not None:
        status["message"] = message
    return status


class ScriptedExecutor(Executor):
    def __init__(self) -> None:
        self.running: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def registered(self, driver: Any, executor_info: Any, framework_info: Any, agent_info: Any) -> None:
        record = {
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "argv": sys.argv,
            "uid": os.getuid(),
            "sid": os.getsid(0),
            "pid": os.getpid(),
            "executor_info": executor_info,
            "framework_info": framework_info,
            "agent_info": agent_info,
        }
        with open("executor.json", "w", encoding="utf-8") as handle:
            json.dump(record, handle)

    def reregistered(self, driver: Any, agent_info: Any) -> None:
        with open("reregistered", "a", encoding="utf-8") as handle:
            handle.write(f"{time.time()}\n")

    def launchTask(self, driver: Any, task: Any) -> None:
        plan = json.loads(base64.b64decode(task["data"])) if task.get("data") else {"action": "finish"}
        task_id = task["task_id"]
        driver.sendStatusUpdate(_status(task_id, "TASK_STARTING"))
        driver.sendStatusUpdate(_status(task_id, "TASK_RUNNING"))
        action = plan.get("action")
        if action == "finish":
            driver.sendStatusUpdate(_status(task_id, "TASK_FINISHED", "done"))
        elif action == "exit":
            time.sleep(0.5)
            os._exit(int(plan.get("code", 1)))
        else:
            with self.lock:
                self.running[task_id["value"]] = task

    def killTask(self, driver: Any, task_id: Any) -> None:
        with self.lock:
            self.running.pop(task_id["value"], None)
        driver.sendStatusUpdate(_status(task_id, "TASK_KILLED", "killed by the scheduler"))

    def frameworkMessage(self, driver: Any, message: Any) -> None:
        text = base64.b64decode(message).decode("utf-8")
        driver.sendFrameworkMessage(encode_data(f"echo:{text}".encode()))

    def shutdown(self, driver: Any) -> None:
        with open("shutdown", "a", encoding="utf-8") as handle:
            handle.write(f"{time.time()}\n")


if __name__ == "__main__":
    driver = MesosExecutorDriver(ScriptedExecutor(), use_addict=True)
    driver.run()
