"""The stand-in Mesos master: frameworks, agents, offers, tasks and the rules that tie them.

Everything here runs on one asyncio loop and never awaits in the middle of a state change, so
no locks are needed and the order of events on every stream is the order of decisions here.
The behaviour mirrors Apache Mesos' src/master/master.cpp (1.11); comments name the Mesos
behaviour where it is not obvious.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import socket
import struct
import time
import urllib.parse
from typing import Any

import aiohttp

from framework.mesos_resources import (
    Attribute,
    AttributeParseError,
    ResourceError,
    Resources,
    attributes_from_json,
    attributes_to_json,
    validate_role,
)
from sandbox.mesos import MESOS_VERSION
from sandbox.mesos.master.agent_link import AgentLink, HttpAgentLink
from sandbox.mesos.master.allocator import Allocator
from sandbox.mesos.master.config import MasterConfig
from sandbox.mesos.master.launch_validation import (
    parse_resources,
    validate_id,
    validate_launch,
    validate_launch_group,
)
from sandbox.mesos.master.model import Agent, Framework, Offer, Task, is_terminal
from sandbox.mesos.master.state_json import agent_v1, framework_v1, get_state, task_v1
from sandbox.mesos.master.streams import EventStream, OffersEncoder, encode_update_event
from sandbox.mesos.wire import b64decode, b64encode, new_uuid_string

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

HEARTBEAT_EVENT: JsonObject = {"type": "HEARTBEAT"}
MAX_FAILOVER_TIMEOUT = 10 * 365 * 24 * 3600.0


def _ip_as_uint32(ip: str) -> int:
    """MasterInfo.ip: the IPv4 address in network byte order, read as a host integer."""
    try:
        return int(struct.unpack("<I", socket.inet_aton(ip))[0])
    except OSError:
        return 0


def normalize_uuid(value: str) -> str:
    """Base64 uuids compare by their bytes, not their spelling."""
    try:
        return b64encode(b64decode(value))
    except ValueError:
        return value


class Master:
    def __init__(self, config: MasterConfig) -> None:
        self.config = config
        self.master_id = new_uuid_string()
        self.start_time = time.time()
        self.elected_time = self.start_time
        self.pid = f"master@{config.advertise_ip}:{config.advertise_port}"
        self.info: JsonObject = {
            "id": self.master_id,
            "ip": _ip_as_uint32(config.advertise_ip),
            "port": config.advertise_port,
            "pid": self.pid,
            "hostname": config.hostname,
            "version": MESOS_VERSION,
            "address": {
                "hostname": config.hostname,
                "ip": config.advertise_ip,
                "port": config.advertise_port,
            },
        }
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: collections.deque[Framework] = collections.deque(
            maxlen=max(1, config.max_completed_frameworks)
        )
        self.completed_framework_ids: set[str] = set()
        self.agents: dict[str, Agent] = {}
        self.unreachable_agents: dict[str, float] = {}
        self.gone_agents: dict[str, float] = {}
        self.offers: dict[str, Offer] = {}
        self.allocator = Allocator(self, config.allocation_interval)
        self._next_framework = 0
        self._next_agent = 0
        self._next_offer = 0
        self._session: aiohttp.ClientSession | None = None
        self._pinger: asyncio.Task[None] | None = None
        self.stats: collections.Counter[str] = collections.Counter()
        self.operator_streams: list[EventStream] = []
        self._offers_encoder = OffersEncoder()
        # Fire-and-forget tasks; asyncio only keeps weak references to running tasks.
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------------------------
    # Lifecycle
    # ------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        self.allocator.start()
        self._pinger = asyncio.get_running_loop().create_task(self._ping_agents(), name="agent-pinger")

    async def stop(self) -> None:
        await self.allocator.stop()
        if self._pinger is not None:
            self._pinger.cancel()
        for framework in list(self.frameworks.values()):
            if framework.stream is not None:
                framework.stream.close()
        for agent in list(self.agents.values()):
            await agent.link.close()
        if self._session is not None:
            await self._session.close()

    def now(self) -> float:
        return time.time()

    # ------------------------------------------------------------------------------------
    # Events to frameworks
    # ------------------------------------------------------------------------------------

    def _send(self, framework: Framework, event: JsonObject) -> None:
        if framework.stream is not None:
            framework.stream.send(event)

    def _forward_update(self, framework: Framework | None, status: JsonObject) -> None:
        if framework is not None and framework.stream is not None:
            # What _send would queue: {"type": "UPDATE", "update": {"status": status}}.
            framework.stream.send_record(encode_update_event(status))
            self.stats["updates_forwarded"] += 1

    def operator_subscribe(self, stream: EventStream) -> None:
        stream.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "get_state": get_state(self),
                    "heartbeat_interval_seconds": self.config.heartbeat_interval,
                },
            }
        )
        stream.start_heartbeats()
        self.operator_streams.append(stream)

    def operator_stream_closed(self, stream: EventStream) -> None:
        if stream in self.operator_streams:
            self.operator_streams.remove(stream)

    def _operator_event(self, event: JsonObject) -> None:
        for stream in self.operator_streams:
            stream.send(event)

    def master_status(  # noqa: PLR0917 - mirrors protobuf::createStatusUpdate's argument list
        self,
        task_id: str,
        state: str,
        message: str,
        reason: str,
        agent_id: str | None = None,
        executor_id: str | None = None,
        unreachable_time: float | None = None,
    ) -> JsonObject:
        """A TaskStatus generated by the master: SOURCE_MASTER and no uuid (no ack needed)."""
        status: JsonObject = {
            "task_id": {"value": task_id},
            "state": state,
            "message": message,
            "source": "SOURCE_MASTER",
            "reason": reason,
        }
        if agent_id is not None:
            status["agent_id"] = {"value": agent_id}
        if executor_id is not None:
            status["executor_id"] = {"value": executor_id}
        status["timestamp"] = self.now()
        if unreachable_time is not None:
            status["unreachable_time"] = {"nanoseconds": int(unreachable_time * 1e9)}
        return status

    # ------------------------------------------------------------------------------------
    # Framework subscription, failover and removal
    # ------------------------------------------------------------------------------------

    def validate_framework_info(self, info: JsonObject) -> str | None:
        """validation::framework::validate + the master's own checks (Master::validateFramework)."""
        capabilities = {c.get("type") for c in info.get("capabilities", [])}
        multi_role = "MULTI_ROLE" in capabilities
        if multi_role:
            if "role" in info:
                return "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
            roles = info.get("roles", [])
            duplicates = sorted({r for r in roles if roles.count(r) > 1})
            if duplicates:
                return f"'FrameworkInfo.roles' contains duplicate items: {{ {', '.join(duplicates)} }}"
            for role in roles:
                problem = validate_role(role)
                if problem:
                    return f"'FrameworkInfo.roles' contains invalid role: {problem}"
        else:
            if info.get("roles"):
                return "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
            problem = validate_role(info.get("role", "*"))
            if problem:
                return f"'FrameworkInfo.role' is not a valid role: {problem}"
        framework_id = (info.get("id") or {}).get("value", "")
        if framework_id:
            problem = validate_id(framework_id)
            if problem:
                return problem
        timeout = info.get("failover_timeout", 0.0)
        if not math.isfinite(timeout) or abs(timeout) * 1e9 >= 2**63:
            return f"The framework failover_timeout ({timeout:g}) is invalid"
        if framework_id and framework_id in self.completed_framework_ids:
            return "Framework has been removed"
        return None

    @staticmethod
    def _roles_of(info: JsonObject) -> list[str]:
        if any(c.get("type") == "MULTI_ROLE" for c in info.get("capabilities", [])):
            return list(info.get("roles", []))
        return [info.get("role", "*")]

    def _suppressed_roles_error(self, info: JsonObject, suppressed: list[str]) -> str | None:
        invalid = sorted(set(suppressed) - set(self._roles_of(info)))
        if invalid:
            return f"Suppressed roles {{ {', '.join(invalid)} }} are not contained in the set of roles"
        return None

    @staticmethod
    def validate_framework_update(old: JsonObject, new: JsonObject) -> str | None:
        """validation::framework::validateUpdate."""
        if old.get("principal") != new.get("principal"):
            return "Changing framework's principal is not allowed."
        if old.get("user") != new.get("user"):
            return (
                "Updating 'FrameworkInfo.user' is unsupported; attempted to update from "
                f"'{old.get('user')}' to '{new.get('user')}'"
            )
        if bool(old.get("checkpoint", False)) != bool(new.get("checkpoint", False)):
            return (
                "Updating 'FrameworkInfo.checkpoint' is unsupported; attempted to update from "
                f"'{str(bool(old.get('checkpoint', False))).lower()}' to "
                f"'{str(bool(new.get('checkpoint', False))).lower()}'"
            )
        return None

    def _refuse_subscription(self, stream: EventStream, message: str) -> None:
        log.info("refusing subscription: %s", message)
        stream.send({"type": "ERROR", "error": {"message": message}})
        stream.close()

    def subscribe(self, stream: EventStream, call: JsonObject, principal: str | None) -> None:
        """Master::subscribe for an HTTP scheduler (the 200 stream is already open)."""
        info: JsonObject = call["framework_info"]
        if principal is not None and "principal" not in info:
            info["principal"] = principal
        suppressed = list(call.get("suppressed_roles", []))
        error = self.validate_framework_info(info) or self._suppressed_roles_error(info, suppressed)
        if error:
            self._refuse_subscription(stream, error)
            return

        framework_id = (info.get("id") or {}).get("value", "")
        if not framework_id:
            framework_id = f"{self.master_id}-{self._next_framework:04d}"
            self._next_framework += 1
            info["id"] = {"value": framework_id}
            framework = Framework(framework_id=framework_id, info=info, registered_time=self.now())
            framework.completed_tasks = collections.deque(
                maxlen=self.config.max_completed_tasks_per_framework
            )
            framework.suppressed_roles = set(suppressed)
            self.frameworks[framework_id] = framework
            log.info("framework %s (%s) subscribed", framework_id, framework.name)
            self._connect(framework, stream)
            if self.operator_streams:
                self._operator_event(
                    {
                        "type": "FRAMEWORK_ADDED",
                        "framework_added": {"framework": framework_v1(self, framework)},
                    }
                )
            return

        framework = self.frameworks.get(framework_id)
        created = False
        if framework is None:
            # Unknown but never removed: a scheduler coming back after a master restart.
            framework = Framework(
                framework_id=framework_id, info=dict(info), registered_time=self.now(), recovered=True
            )
            framework.completed_tasks = collections.deque(
                maxlen=self.config.max_completed_tasks_per_framework
            )
            created = True
        # Mesos silently keeps the original user and checkpoint (MESOS-703).
        for immutable in ("user", "checkpoint"):
            if immutable in framework.info:
                info[immutable] = framework.info[immutable]
            else:
                info.pop(immutable, None)
        error = self.validate_framework_update(framework.info, info)
        if error:
            self._refuse_subscription(stream, error)
            return
        if created:
            self.frameworks[framework_id] = framework
        framework.info = info
        framework.suppressed_roles = set(suppressed)
        if framework.failover_timer is not None:
            framework.failover_timer.cancel()
            framework.failover_timer = None
        if framework.stream is not None:
            old = framework.stream
            framework.stream = None
            old.send({"type": "ERROR", "error": {"message": "Framework failed over"}})
            old.close()
        # Offers made to the previous connection are void.
        for offer in list(framework.offers.values()):
            self.remove_offer(offer, rescind=False)
        framework.reregistered_time = self.now()
        framework.recovered = False
        log.info("framework %s (%s) re-subscribed", framework_id, framework.name)
        self._connect(framework, stream)
        self._broadcast_framework_info(framework)
        if self.operator_streams:
            self._operator_event(
                {
                    "type": "FRAMEWORK_UPDATED",
                    "framework_updated": {"framework": framework_v1(self, framework)},
                }
            )

    def _connect(self, framework: Framework, stream: EventStream) -> None:
        stream.framework_id = framework.framework_id
        framework.stream = stream
        framework.active = True
        stream.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": {"value": framework.framework_id},
                    "heartbeat_interval_seconds": self.config.heartbeat_interval,
                    "master_info": self.info,
                },
            }
        )
        stream.start_heartbeats()
        self.allocator.request()

    def _broadcast_framework_info(self, framework: Framework) -> None:
        involved = {task.agent_id for task in framework.tasks.values()} | set(framework.executors)
        for agent_id in involved:
            agent = self.agents.get(agent_id)
            if agent is not None:
                agent.link.update_framework(framework.info)

    def stream_closed(self, stream: EventStream) -> None:
        """The scheduler's connection went away (or the master closed it)."""
        framework = self.frameworks.get(stream.framework_id or "")
        if framework is None or framework.stream is not stream:
            return
        log.info("framework %s disconnected", framework.framework_id)
        framework.stream = None
        framework.active = False
        for offer in list(framework.offers.values()):
            self.remove_offer(offer, rescind=False)
        timeout = min(max(float(framework.info.get("failover_timeout", 0.0)), 0.0), MAX_FAILOVER_TIMEOUT)
        reregistered = framework.reregistered_time
        framework.failover_timer = asyncio.get_running_loop().call_later(
            timeout, self._failover_timeout, framework.framework_id, reregistered
        )
        self.allocator.request()

    def _failover_timeout(self, framework_id: str, reregistered_time: float | None) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is None or framework.connected or framework.reregistered_time != reregistered_time:
            return
        log.info("framework %s did not re-subscribe within its failover timeout", framework_id)
        self.remove_framework(framework)

    def remove_framework(self, framework: Framework) -> None:
        """Teardown: shut down its executors, kill its tasks, move it to completed_frameworks."""
        framework_id = framework.framework_id
        log.info("removing framework %s (%s)", framework_id, framework.name)
        if framework.failover_timer is not None:
            framework.failover_timer.cancel()
            framework.failover_timer = None
        if framework.stream is not None:
            stream, framework.stream = framework.stream, None
            stream.close()
        framework.active = False
        for offer in list(framework.offers.values()):
            self.remove_offer(offer, rescind=False)
        involved = {task.agent_id for task in framework.tasks.values()} | set(framework.executors)
        for agent_id in involved:
            agent = self.agents.get(agent_id)
            if agent is not None:
                agent.link.shutdown_framework(framework_id)
        for task in list(framework.tasks.values()):
            status = self.master_status(
                task.task_id,
                "TASK_KILLED",
                f"Framework {framework_id} removed",
                "REASON_FRAMEWORK_REMOVED",
                task.agent_id,
                task.executor_id,
            )
            self._update_task(task, status)
            self._remove_task(task)
        for agent_id, executors in list(framework.executors.items()):
            agent = self.agents.get(agent_id)
            for executor_id in list(executors):
                if agent is not None:
                    self._remove_executor(agent, framework_id, executor_id)
        framework.executors.clear()
        framework.unregistered_time = self.now()
        self.frameworks.pop(framework_id, None)
        self.completed_frameworks.append(framework)
        self.completed_framework_ids.add(framework_id)
        self.allocator.request()
        if self.operator_streams:
            self._operator_event(
                {"type": "FRAMEWORK_REMOVED", "framework_removed": {"framework_info": framework.info}}
            )

    def update_framework(self, framework: Framework, call: JsonObject) -> tuple[int, str]:
        """UPDATE_FRAMEWORK: 200, or 400 with Mesos' reason."""
        info: JsonObject = call["framework_info"]
        error = self.validate_framework_info(info)
        if error:
            return 400, f"Supplied FrameworkInfo is not valid: {error}"
        error = self.validate_framework_update(framework.info, info)
        if error:
            return 400, f"FrameworkInfo update is not valid: {error}"
        suppressed = list(call.get("suppressed_roles", []))
        error = self._suppressed_roles_error(info, suppressed)
        if error:
            return 400, f"'UpdateFramework' call is not valid: {error}"
        framework.info = info
        framework.suppressed_roles = set(suppressed)
        self._broadcast_framework_info(framework)
        self.allocator.request()
        return 200, ""

    # ------------------------------------------------------------------------------------
    # Offers
    # ------------------------------------------------------------------------------------

    def add_offer(self, framework: Framework, agent: Agent, resources: Resources, role: str) -> Offer:
        offer_id = f"{self.master_id}-O{self._next_offer}"
        self._next_offer += 1
        offer = Offer(offer_id, framework.framework_id, agent.agent_id, resources, role)
        self.offers[offer_id] = offer
        framework.offers[offer_id] = offer
        agent.offers[offer_id] = offer
        agent.add_offered(resources)
        return offer

    def remove_offer(self, offer: Offer, *, rescind: bool) -> None:
        self.offers.pop(offer.offer_id, None)
        framework = self.frameworks.get(offer.framework_id)
        agent = self.agents.get(offer.agent_id)
        if framework is not None:
            framework.offers.pop(offer.offer_id, None)
        if agent is not None and agent.offers.pop(offer.offer_id, None) is not None:
            # Like Mesos' recoverResources, returned offer resources wait for the next batch
            # allocation (--allocation_interval) instead of triggering one.
            agent.remove_offered(offer.resources)
            self.allocator.mark(agent.agent_id)
        if rescind and framework is not None:
            self._send(framework, {"type": "RESCIND", "rescind": {"offer_id": {"value": offer.offer_id}}})

    def offer_json(self, offer: Offer, framework: Framework, agent: Agent) -> JsonObject:
        return self._offer_json(
            offer, framework, agent, framework.has_capability("RESERVATION_REFINEMENT"), framework.multi_role
        )

    def _offer_json(
        self, offer: Offer, framework: Framework, agent: Agent, refinement: bool, multi_role: bool
    ) -> JsonObject:
        resources = offer.resources.to_json(reservation_refinement=refinement)
        out: JsonObject = {
            "id": {"value": offer.offer_id},
            "framework_id": {"value": framework.framework_id},
            "agent_id": {"value": agent.agent_id},
            "hostname": agent.hostname,
            "url": agent.offer_template["url"],
            "resources": resources,
        }
        if multi_role:
            # to_json() is shared (memoized); decorate copies.
            out["resources"] = [{**r, "allocation_info": {"role": offer.role}} for r in resources]
            out["allocation_info"] = {"role": offer.role}
        if agent.offer_template.get("attributes"):
            out["attributes"] = agent.offer_template["attributes"]
        executor_ids = agent.executors.get(framework.framework_id)
        if executor_ids:
            out["executor_ids"] = [{"value": e} for e in executor_ids]
        return out

    def send_offers(self, framework: Framework, offers: list[Offer]) -> None:
        refinement = framework.has_capability("RESERVATION_REFINEMENT")
        multi_role = framework.multi_role
        payload = [
            self._offer_json(o, framework, self.agents[o.agent_id], refinement, multi_role) for o in offers
        ]
        self.stats["offers_sent"] += len(payload)
        if framework.stream is not None:
            # The same record as _send would make; built sharing the agents' common JSON.
            framework.stream.send_record(self._offers_encoder.encode(payload))

    # ------------------------------------------------------------------------------------
    # ACCEPT / DECLINE / REVIVE / SUPPRESS
    # ------------------------------------------------------------------------------------

    def _offers_error(self, framework: Framework, offer_ids: list[str]) -> str | None:
        """validation::offer::validate, in Mesos' order."""
        if not offer_ids:
            return "No offers specified"
        seen: set[str] = set()
        for offer_id in offer_ids:
            if offer_id in seen:
                return f"Duplicate offer {offer_id} in offer list"
            seen.add(offer_id)
        for offer_id in offer_ids:
            if offer_id not in self.offers:
                return f"Offer {offer_id} is no longer valid"
        for offer_id in offer_ids:
            owner = self.offers[offer_id].framework_id
            if owner != framework.framework_id:
                return (
                    f"Offer {offer_id} has invalid framework {owner} while framework "
                    f"{framework.framework_id} is expected"
                )
        first = self.offers[offer_ids[0]]
        for offer_id in offer_ids:
            offer = self.offers[offer_id]
            if offer.role != first.role:
                return (
                    f"Aggregated offers must be allocated to the same role. Offer {offer_id} uses role "
                    f"'{offer.role} but another is using role '{first.role}"
                )
        for offer_id in offer_ids:
            offer = self.offers[offer_id]
            if offer.agent_id != first.agent_id:
                return (
                    f"Aggregated offers must belong to one single agent. Offer {offer_id} uses agent "
                    f"{offer.agent_id} and agent {first.agent_id}"
                )
        return None

    @staticmethod
    def _launched_tasks(operations: list[JsonObject]) -> list[JsonObject]:
        tasks: list[JsonObject] = []
        for operation in operations:
            if operation.get("type") == "LAUNCH":
                tasks.extend((operation.get("launch") or {}).get("task_infos", []))
            elif operation.get("type") == "LAUNCH_GROUP":
                group = (operation.get("launch_group") or {}).get("task_group") or {}
                tasks.extend(group.get("tasks", []))
        return tasks

    def accept(self, framework: Framework, call: JsonObject) -> None:
        self.stats["accept_calls"] += 1
        offer_ids = [o["value"] for o in call.get("offer_ids", [])]
        operations: list[JsonObject] = call.get("operations", [])
        error = self._offers_error(framework, offer_ids)
        if error:
            log.warning("ACCEPT from framework %s used invalid offers: %s", framework.framework_id, error)
            for offer_id in offer_ids:
                offer = self.offers.get(offer_id)
                if offer is not None and offer.framework_id == framework.framework_id:
                    self.remove_offer(offer, rescind=False)
            state = "TASK_DROPPED" if framework.partition_aware else "TASK_LOST"
            for task in self._launched_tasks(operations):
                status = self.master_status(
                    task["task_id"]["value"],
                    state,
                    f"Task launched with invalid offers: {error}",
                    "REASON_INVALID_OFFERS",
                    task["agent_id"]["value"],
                )
                self._forward_update(framework, status)
            return

        offers = [self.offers[offer_id] for offer_id in offer_ids]
        agent = self.agents[offers[0].agent_id]
        role = offers[0].role
        remaining = offers[0].resources
        for offer in offers[1:]:
            remaining = remaining + offer.resources
        for offer in offers:
            self.remove_offer(offer, rescind=False)

        for operation in operations:
            kind = operation.get("type", "UNKNOWN")
            if kind == "LAUNCH":
                for task in (operation.get("launch") or {}).get("task_infos", []):
                    remaining = self._launch(framework, agent, task, remaining, role)
            elif kind == "LAUNCH_GROUP":
                remaining = self._launch_group(
                    framework, agent, operation.get("launch_group") or {}, remaining, role
                )
            else:
                self._drop_operation(
                    framework, operation, f"{kind} operations are not supported by this master"
                )

        # Whatever the ACCEPT left unused counts as declined, with the ACCEPT's filters.
        self.allocator.refuse(framework, agent.agent_id, remaining, call.get("filters"))

    def _drop_operation(self, framework: Framework, operation: JsonObject, message: str) -> None:
        log.warning("dropping operation from framework %s: %s", framework.framework_id, message)
        if "id" in operation:
            self._send(
                framework,
                {
                    "type": "UPDATE_OPERATION_STATUS",
                    "update_operation_status": {
                        "status": {
                            "operation_id": operation["id"],
                            "state": "OPERATION_ERROR",
                            "message": message,
                        }
                    },
                },
            )

    def _task_error(self, framework: Framework, task: JsonObject, message: str) -> None:
        status = self.master_status(
            task["task_id"]["value"], "TASK_ERROR", message, "REASON_TASK_INVALID", task["agent_id"]["value"]
        )
        self._forward_update(framework, status)

    def _add_executor(self, framework: Framework, agent: Agent, executor: JsonObject) -> None:
        executor_id = executor["executor_id"]["value"]
        agent.executors.setdefault(framework.framework_id, {})[executor_id] = executor
        framework.executors.setdefault(agent.agent_id, {})[executor_id] = executor

    def _add_task(self, framework: Framework, agent: Agent, task_info: JsonObject, role: str) -> Task:
        executor = task_info.get("executor")
        task = Task(
            task_id=task_info["task_id"]["value"],
            framework_id=framework.framework_id,
            agent_id=agent.agent_id,
            name=task_info["name"],
            executor_id=executor["executor_id"]["value"] if executor else None,
            resources=parse_resources(task_info.get("resources")),
            role=role,
            info=task_info,
        )
        framework.tasks[task.task_id] = task
        agent.tasks[(framework.framework_id, task.task_id)] = task
        if self.operator_streams:
            self._operator_event({"type": "TASK_ADDED", "task_added": {"task": task_v1(task)}})
        return task

    def _launch(
        self, framework: Framework, agent: Agent, task_info: JsonObject, remaining: Resources, role: str
    ) -> Resources:
        executor = task_info.get("executor")
        if executor is not None and "framework_id" not in executor:
            executor["framework_id"] = {"value": framework.framework_id}
        error, consumed = validate_launch(task_info, framework, agent, remaining, role)
        if error:
            self._task_error(framework, task_info, error)
            return remaining
        new_executor = executor is not None and not agent.has_executor(
            framework.framework_id, executor["executor_id"]["value"]
        )
        if new_executor:
            self._add_executor(framework, agent, executor)
        self._add_task(framework, agent, task_info, role)
        agent.allocate(framework.framework_id, consumed)
        self.stats["tasks_launched"] += 1
        agent.link.run_task(framework.info, task_info, executor if new_executor else None)
        return remaining - consumed

    def _launch_group(
        self, framework: Framework, agent: Agent, launch: JsonObject, remaining: Resources, role: str
    ) -> Resources:
        executor: JsonObject = launch["executor"]
        tasks: list[JsonObject] = launch["task_group"].get("tasks", [])
        if "framework_id" not in executor:
            executor["framework_id"] = {"value": framework.framework_id}
        for task in tasks:
            # The master injects the group's executor into every task.
            task["executor"] = executor
        error, consumed = validate_launch_group(executor, tasks, framework, agent, remaining, role)
        if error:
            for task in tasks:
                self._task_error(framework, task, error)
            return remaining
        if not agent.has_executor(framework.framework_id, executor["executor_id"]["value"]):
            self._add_executor(framework, agent, executor)
        for task in tasks:
            self._add_task(framework, agent, task, role)
        agent.allocate(framework.framework_id, consumed)
        self.stats["tasks_launched"] += len(tasks)
        agent.link.run_task_group(framework.info, executor, tasks)
        return remaining - consumed

    def decline(self, framework: Framework, call: JsonObject) -> None:
        for offer_ref in call.get("offer_ids", []):
            offer = self.offers.get(offer_ref["value"])
            if offer is None or offer.framework_id != framework.framework_id:
                log.warning("ignoring DECLINE of invalid offer %s", offer_ref["value"])
                continue
            self.remove_offer(offer, rescind=False)
            self.allocator.refuse(framework, offer.agent_id, offer.resources, call.get("filters"))

    def revive(self, framework: Framework, call: JsonObject) -> None:
        roles = list(call.get("roles", []))
        invalid = [r for r in roles if r not in framework.roles()]
        if invalid:
            log.warning(
                "dropping REVIVE from %s: roles %s are not its roles", framework.framework_id, invalid
            )
            return
        self.allocator.revive(framework, roles)

    def suppress(self, framework: Framework, call: JsonObject) -> None:
        roles = list(call.get("roles", []))
        invalid = [r for r in roles if r not in framework.roles()]
        if invalid:
            log.warning(
                "dropping SUPPRESS from %s: roles %s are not its roles", framework.framework_id, invalid
            )
            return
        self.allocator.suppress(framework, roles)

    # ------------------------------------------------------------------------------------
    # Tasks: updates, acknowledgements, kills, reconciliation
    # ------------------------------------------------------------------------------------

    def _release_task_resources(self, task: Task) -> None:
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.release(task.framework_id, task.resources)
        self.allocator.request(task.agent_id)

    def _update_task(self, task: Task, status: JsonObject, latest_state: str | None = None) -> None:
        """Master::updateTask: record the update; free the resources on a terminal transition."""
        new_state = latest_state or status["state"]
        was_done = is_terminal(task.state) or task.state == "TASK_UNREACHABLE"
        if not is_terminal(task.state):
            task.state = new_state
        task.status_update_state = status["state"]
        task.status_update_uuid = normalize_uuid(status["uuid"]) if "uuid" in status else None
        # Statuses are kept without their data. A status is not changed once it has been
        # forwarded, so without data it can be kept as it is.
        stored = {k: v for k, v in status.items() if k != "data"} if "data" in status else status
        if task.statuses and task.statuses[-1].get("state") == stored.get("state"):
            task.statuses[-1] = stored
        else:
            task.statuses.append(stored)
        if not was_done and (is_terminal(task.state) or task.state == "TASK_UNREACHABLE"):
            self._release_task_resources(task)
        if self.operator_streams:
            self._operator_event(
                {
                    "type": "TASK_UPDATED",
                    "task_updated": {
                        "framework_id": {"value": task.framework_id},
                        "status": stored,
                        "state": task.state,
                    },
                }
            )

    def _remove_task(self, task: Task) -> None:
        if not is_terminal(task.state) and task.state != "TASK_UNREACHABLE":
            self._release_task_resources(task)
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.tasks.pop((task.framework_id, task.task_id), None)
        framework = self.frameworks.get(task.framework_id)
        if framework is not None:
            framework.tasks.pop(task.task_id, None)
            framework.unreachable_tasks.pop(task.task_id, None)
            framework.completed_tasks.append(task)

    def _remove_executor(self, agent: Agent, framework_id: str, executor_id: str) -> None:
        executors = agent.executors.get(framework_id, {})
        executor = executors.pop(executor_id, None)
        if not executors:
            agent.executors.pop(framework_id, None)
        framework = self.frameworks.get(framework_id)
        if framework is not None:
            on_agent = framework.executors.get(agent.agent_id, {})
            on_agent.pop(executor_id, None)
            if not on_agent:
                framework.executors.pop(agent.agent_id, None)
        if executor is None:
            return
        try:
            resources = parse_resources(executor.get("resources"))
        except ResourceError:
            resources = Resources()
        agent.release(framework_id, resources)
        self.allocator.request(agent.agent_id)

    def status_update(
        self, agent_id: str, framework_id: str, status: JsonObject, latest_state: str | None = None
    ) -> None:
        """A status update from an agent: forward it, then update the master's view of the task."""
        self.stats["status_updates"] += 1
        agent = self.agents.get(agent_id)
        if agent is None:
            log.warning("ignoring status update from unknown agent %s", agent_id)
            return
        framework = self.frameworks.get(framework_id)
        if framework is None:
            log.warning("ignoring status update for unknown framework %s", framework_id)
            return
        if "agent_id" not in status:
            status["agent_id"] = {"value": agent_id}
        self._forward_update(framework, status)
        task = agent.tasks.get((framework_id, status["task_id"]["value"]))
        if task is None:
            log.warning("status update for unknown task %s", status["task_id"]["value"])
            return
        self._update_task(task, status, latest_state)
        if is_terminal(task.state) and "uuid" not in status:
            self._remove_task(task)

    def acknowledge(self, framework: Framework, call: JsonObject) -> None:
        agent_id = call["agent_id"]["value"]
        task_id = call["task_id"]["value"]
        agent = self.agents.get(agent_id)
        if agent is None or not agent.active:
            log.warning("cannot forward acknowledgement for task %s to unknown agent %s", task_id, agent_id)
            return
        task = agent.tasks.get((framework.framework_id, task_id))
        uuid: str = call["uuid"]
        if task is None or uuid != task.status_update_uuid:
            # The task's uuid is kept canonical; an equal text needs no re-encoding.
            uuid = normalize_uuid(uuid)
        if (
            task is not None
            and task.status_update_uuid == uuid
            and task.status_update_state is not None
            and is_terminal(task.status_update_state)
        ):
            self._remove_task(task)
        self.stats["acknowledgements"] += 1
        agent.link.acknowledge(framework.framework_id, task_id, uuid)

    def kill(self, framework: Framework, call: JsonObject) -> None:
        task_id = call["task_id"]["value"]
        task = framework.tasks.get(task_id)
        if task is None:
            # Mesos answers a kill of an unknown task with an explicit reconciliation.
            entry: JsonObject = {"task_id": {"value": task_id}}
            if "agent_id" in call:
                entry["agent_id"] = call["agent_id"]
            self.reconcile(framework, {"tasks": [entry]})
            return
        agent = self.agents.get(task.agent_id)
        if agent is None or not agent.active:
            log.warning("cannot kill task %s: agent %s is disconnected", task_id, task.agent_id)
            return
        agent.link.kill_task(framework.framework_id, task_id, call.get("kill_policy"))

    def shutdown_executor(self, framework: Framework, call: JsonObject) -> None:
        agent = self.agents.get(call["agent_id"]["value"])
        if agent is None:
            log.warning("cannot shut down executor on unknown agent %s", call["agent_id"]["value"])
            return
        agent.link.shutdown_executor(framework.framework_id, call["executor_id"]["value"])

    def framework_message(self, framework: Framework, call: JsonObject) -> None:
        agent = self.agents.get(call["agent_id"]["value"])
        if agent is None or not agent.active:
            log.warning("dropping framework message to unknown agent %s", call["agent_id"]["value"])
            return
        agent.link.framework_message(framework.framework_id, call["executor_id"]["value"], call["data"])

    def _reconcile_status(self, framework: Framework, task: Task) -> JsonObject:
        state = task.status_update_state or task.state
        status = self.master_status(
            task.task_id,
            state,
            "Reconciliation: Latest task state",
            "REASON_RECONCILIATION",
            task.agent_id,
            task.executor_id,
        )
        latest = task.latest_status()
        if latest is not None and "healthy" in latest:
            status["healthy"] = latest["healthy"]
        return status

    def reconcile(self, framework: Framework, call: JsonObject) -> None:
        entries = call.get("tasks", [])
        if not entries:
            for task in list(framework.tasks.values()):
                self._send(
                    framework,
                    {"type": "UPDATE", "update": {"status": self._reconcile_status(framework, task)}},
                )
            return
        aware = framework.partition_aware
        for entry in entries:
            task_id = entry["task_id"]["value"]
            agent_id = (entry.get("agent_id") or {}).get("value")
            task = framework.tasks.get(task_id)
            if task is not None:
                status = self._reconcile_status(framework, task)
            elif agent_id is not None and agent_id in self.agents:
                status = self.master_status(
                    task_id,
                    "TASK_GONE" if aware else "TASK_LOST",
                    "Reconciliation: Task is unknown to the agent",
                    "REASON_RECONCILIATION",
                    agent_id,
                )
            elif agent_id is not None and agent_id in self.unreachable_agents:
                status = self.master_status(
                    task_id,
                    "TASK_UNREACHABLE" if aware else "TASK_LOST",
                    "Reconciliation: Task is unreachable",
                    "REASON_RECONCILIATION",
                    agent_id,
                    unreachable_time=self.unreachable_agents[agent_id],
                )
            elif agent_id is not None and agent_id in self.gone_agents:
                status = self.master_status(
                    task_id,
                    "TASK_GONE_BY_OPERATOR" if aware else "TASK_LOST",
                    "Reconciliation: Task is gone",
                    "REASON_RECONCILIATION",
                    agent_id,
                )
            else:
                status = self.master_status(
                    task_id,
                    "TASK_UNKNOWN" if aware else "TASK_LOST",
                    "Reconciliation: Task is unknown",
                    "REASON_RECONCILIATION",
                    agent_id,
                )
            self._send(framework, {"type": "UPDATE", "update": {"status": status}})

    # ------------------------------------------------------------------------------------
    # Agents
    # ------------------------------------------------------------------------------------

    def _new_agent_id(self) -> str:
        agent_id = f"{self.master_id}-S{self._next_agent}"
        self._next_agent += 1
        return agent_id

    def _make_agent(  # noqa: PLR0917
        self,
        agent_id: str,
        info: JsonObject,
        link: AgentLink,
        ip: str,
        version: str,
        registered: float,
        parsed: dict[tuple[int, int], tuple[Resources, list[Attribute]]] | None = None,
    ) -> Agent:
        """``parsed``: parses already made during this call, by identity of the JSON lists."""
        info = dict(info)
        info["id"] = {"value": agent_id}
        info.setdefault("port", 5051)
        resources_json, attributes_json = info.get("resources", []), info.get("attributes", [])
        key = (id(resources_json), id(attributes_json))
        known = parsed.get(key) if parsed is not None else None
        if known is None:
            known = (Resources.from_json(resources_json), attributes_from_json(attributes_json))
            if parsed is not None:
                parsed[key] = known
        resources, attributes = known
        agent = Agent(
            agent_id=agent_id,
            hostname=info["hostname"],
            port=int(info["port"]),
            info=info,
            total=resources,
            attributes=attributes,
            link=link,
            pid=f"slave(1)@{ip}:{info['port']}",
            registered_time=registered,
            version=version,
            ip=ip,
            unreserved_only=not resources.reserved(),
        )
        agent.offer_template = {
            "url": {
                "scheme": "http",
                "address": {"hostname": agent.hostname, "ip": ip, "port": agent.port},
                "path": "/slave(1)",
            },
            "attributes": attributes_to_json(attributes),
        }
        for shared in agent.offer_template.values():
            self._offers_encoder.remember(shared)
        return agent

    @staticmethod
    def _url_ip(url: str) -> str:
        host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        return host or "127.0.0.1"

    def _http_link(self, url: str, agent_id: str) -> AgentLink:
        assert self._session is not None, "master not started"
        return HttpAgentLink(self._session, url, agent_id, timeout=self.config.agent_ping_timeout)

    @staticmethod
    def _agent_url_error(url: str) -> str | None:
        try:
            parsed = urllib.parse.urlsplit(url)
            port = parsed.port
        except ValueError as error:
            return f"agent_url {url!r} is not a valid URL: {error}"
        if parsed.scheme not in ("http", "https") or not parsed.hostname or port is None:
            return f"agent_url {url!r} must look like http://<host>:<port>"
        return None

    def register_agent(self, info: JsonObject, url: str, version: str) -> tuple[int, JsonObject]:
        """A new agent (INTERNAL_PROTOCOL register). Returns (HTTP status, body)."""
        url_error = self._agent_url_error(url)
        if url_error:
            return 400, {"error": url_error}
        try:
            Resources.from_json(info.get("resources", []))
            attributes_from_json(info.get("attributes", []))
        except (ResourceError, AttributeParseError) as error:
            return 400, {"error": f"invalid agent_info: {error}"}
        for existing in list(self.agents.values()):
            if isinstance(existing.link, HttpAgentLink) and existing.link.url == url.rstrip("/"):
                same = {k: v for k, v in existing.info.items() if k != "id"} == {
                    k: v for k, v in {**info, "port": info.get("port", 5051)}.items() if k != "id"
                }
                if same and not existing.tasks and not existing.executors:
                    # A retried registration: answer with the id already given.
                    return 200, self._registered_body(existing)
                self.remove_agent(existing, "a new agent registered at the same address")
        agent_id = self._new_agent_id()
        agent = self._make_agent(
            agent_id, info, self._http_link(url, agent_id), self._url_ip(url), version, self.now()
        )
        self.agents[agent_id] = agent
        log.info("registered agent %s at %s (%s)", agent_id, url, agent.hostname)
        if self.operator_streams:
            self._operator_event({"type": "AGENT_ADDED", "agent_added": {"agent": agent_v1(agent)}})
        self.allocator.request(agent_id)
        return 200, self._registered_body(agent)

    def _registered_body(self, agent: Agent) -> JsonObject:
        return {
            "agent_id": {"value": agent.agent_id},
            "ping_interval_seconds": self.config.agent_ping_timeout,
        }

    def add_simulated_agents(self, agents: list[tuple[JsonObject, AgentLink]]) -> list[Agent]:
        """Register in-process agents in bulk (no HTTP; see simulated.py)."""
        now = self.now()
        added = []
        # Simulated agents usually share their resources and attributes JSON: one parse (and one
        # Resources object, whose JSON is then memoized for every offer) serves them all.
        parsed: dict[tuple[int, int], tuple[Resources, list[Attribute]]] = {}
        for info, link in agents:
            agent_id = self._new_agent_id()
            agent = self._make_agent(agent_id, info, link, "127.0.0.1", MESOS_VERSION, now, parsed)
            self.agents[agent_id] = agent
            added.append(agent)
        self.allocator.request()
        return added

    def reregister_agent(self, body: JsonObject) -> tuple[int, JsonObject]:
        info: JsonObject = body["agent_info"]
        agent_id = (info.get("id") or {}).get("value")
        url: str = body["agent_url"]
        if not agent_id:
            return 400, {"error": "agent_info.id is required to re-register"}
        url_error = self._agent_url_error(url)
        if url_error:
            return 400, {"error": url_error}
        if agent_id in self.gone_agents:
            return 409, {"error": f"Agent {agent_id} has been marked gone"}
        try:
            Resources.from_json(info.get("resources", []))
            attributes_from_json(info.get("attributes", []))
        except (ResourceError, AttributeParseError) as error:
            return 400, {"error": f"invalid agent_info: {error}"}
        version = body.get("version", MESOS_VERSION)
        existing = self.agents.get(agent_id)
        if existing is not None:
            old_link = existing.link
            agent = self._make_agent(
                agent_id, info, old_link, self._url_ip(url), version, existing.registered_time
            )
            old_link.set_url(url)
            agent.tasks, agent.executors, agent.offers = existing.tasks, existing.executors, existing.offers
            agent.used_total, agent.offered_total = existing.used_total, existing.offered_total
            agent.reregistered_time = self.now()
            self.agents[agent_id] = agent
            self._reconcile_known_agent(agent, body)
        else:
            was_unreachable = self.unreachable_agents.pop(agent_id, None) is not None
            agent = self._make_agent(
                agent_id, info, self._http_link(url, agent_id), self._url_ip(url), version, self.now()
            )
            agent.reregistered_time = agent.registered_time
            self.agents[agent_id] = agent
            self._readmit_agent(agent, body, was_unreachable)
        log.info("re-registered agent %s at %s", agent_id, url)
        self.allocator.request(agent_id)
        return 200, self._registered_body(agent)

    def _reconcile_known_agent(self, agent: Agent, body: JsonObject) -> None:
        reported = {(t["framework_id"]["value"], t["task_id"]["value"]) for t in body.get("tasks", [])}
        for key, task in list(agent.tasks.items()):
            if key in reported or is_terminal(task.state):
                continue
            framework = self.frameworks.get(task.framework_id)
            aware = framework is not None and framework.partition_aware
            status = self.master_status(
                task.task_id,
                "TASK_DROPPED" if aware else "TASK_LOST",
                "Task is unknown to the agent",
                "REASON_TASK_UNKNOWN",
                agent.agent_id,
                task.executor_id,
            )
            self._update_task(task, status)
            self._remove_task(task)
            self._forward_update(framework, status)
        self._adopt_reported(agent, body, was_unreachable=False)

    def _readmit_agent(self, agent: Agent, body: JsonObject, was_unreachable: bool) -> None:
        for info in body.get("frameworks", []):
            framework_id = (info.get("id") or {}).get("value")
            if (
                not framework_id
                or framework_id in self.frameworks
                or framework_id in self.completed_framework_ids
            ):
                continue
            recovered = Framework(
                framework_id=framework_id, info=info, registered_time=self.now(), recovered=True
            )
            recovered.active = False
            self.frameworks[framework_id] = recovered
        self._adopt_reported(agent, body, was_unreachable)

    def _adopt_reported(self, agent: Agent, body: JsonObject, was_unreachable: bool) -> None:
        shut_down: set[str] = set()
        for executor in body.get("executors", []):
            framework_id = (executor.get("framework_id") or {}).get("value", "")
            framework = self.frameworks.get(framework_id)
            if framework is None or (was_unreachable and not framework.partition_aware):
                shut_down.add(framework_id)
                continue
            if not agent.has_executor(framework_id, executor["executor_id"]["value"]):
                self._add_executor(framework, agent, executor)
                try:
                    resources = parse_resources(executor.get("resources"))
                except ResourceError:
                    resources = Resources()
                agent.allocate(framework_id, resources)
        for reported in body.get("tasks", []):
            framework_id = reported["framework_id"]["value"]
            task_id = reported["task_id"]["value"]
            framework = self.frameworks.get(framework_id)
            if framework is None or (was_unreachable and not framework.partition_aware):
                # Tasks of removed frameworks, or LOST ones of non-partition-aware frameworks.
                shut_down.add(framework_id)
                continue
            if (framework_id, task_id) in agent.tasks or is_terminal(reported["state"]):
                continue
            framework.unreachable_tasks.pop(task_id, None)
            try:
                resources = parse_resources(reported.get("resources"))
            except ResourceError:
                resources = Resources()
            task = Task(
                task_id=task_id,
                framework_id=framework_id,
                agent_id=agent.agent_id,
                name=reported["name"],
                executor_id=(reported.get("executor_id") or {}).get("value"),
                resources=resources,
                role=framework.roles()[0] if framework.roles() else "*",
                info=reported,
                state=reported["state"],
                statuses=list(reported.get("statuses", [])),
            )
            framework.tasks[task_id] = task
            agent.tasks[(framework_id, task_id)] = task
            agent.allocate(framework_id, resources)
        for framework_id in shut_down:
            if framework_id:
                agent.link.shutdown_framework(framework_id)

    def remove_agent(self, agent: Agent, message: str) -> None:
        """Agent removed (replaced at the same address): its tasks are LOST (REASON_AGENT_REMOVED)."""
        self._drop_agent(agent, f"Agent {agent.hostname} removed: {message}", unreachable=False)

    def mark_unreachable(self, agent: Agent, message: str = "health check timed out") -> None:
        """Agent stopped answering pings: TASK_LOST (or TASK_UNREACHABLE if PARTITION_AWARE)."""
        self._drop_agent(agent, message, unreachable=True)

    def _drop_agent(self, agent: Agent, message: str, *, unreachable: bool) -> None:
        log.warning("removing agent %s (%s): %s", agent.agent_id, agent.hostname, message)
        now = self.now()
        agent.active = False
        for offer in list(agent.offers.values()):
            self.remove_offer(offer, rescind=True)
        for task in list(agent.tasks.values()):
            framework = self.frameworks.get(task.framework_id)
            aware = framework is not None and framework.partition_aware
            if not aware:
                state, reason = "TASK_LOST", "REASON_AGENT_REMOVED"
            elif unreachable:
                state, reason = "TASK_UNREACHABLE", "REASON_AGENT_REMOVED"
            else:
                state, reason = "TASK_GONE_BY_OPERATOR", "REASON_AGENT_REMOVED_BY_OPERATOR"
            status = self.master_status(
                task.task_id,
                state,
                message,
                reason,
                agent.agent_id,
                task.executor_id,
                unreachable_time=now if unreachable else None,
            )
            self._update_task(task, status)
            if state == "TASK_UNREACHABLE" and framework is not None:
                framework.tasks.pop(task.task_id, None)
                framework.unreachable_tasks[task.task_id] = task
                agent.tasks.pop((task.framework_id, task.task_id), None)
            else:
                self._remove_task(task)
            self._forward_update(framework, status)
        for framework_id, executors in list(agent.executors.items()):
            for executor_id in list(executors):
                self._remove_executor(agent, framework_id, executor_id)
        self.agents.pop(agent.agent_id, None)
        if unreachable:
            self.unreachable_agents[agent.agent_id] = now
        closing = asyncio.get_running_loop().create_task(agent.link.close())
        self._background.add(closing)
        closing.add_done_callback(self._background.discard)
        if self.operator_streams:
            self._operator_event(
                {"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": agent.agent_id}}}
            )
        for framework in self.frameworks.values():
            self._send(framework, {"type": "FAILURE", "failure": {"agent_id": {"value": agent.agent_id}}})

    def mark_gone(self, agent_id: str) -> bool:
        """Operator MARK_AGENT_GONE."""
        agent = self.agents.get(agent_id)
        if agent is None and agent_id not in self.unreachable_agents:
            return False
        self.gone_agents[agent_id] = self.now()
        self.unreachable_agents.pop(agent_id, None)
        if agent is not None:
            agent.link.send("shutdown", {"message": "Agent has been marked gone"})
            self._drop_agent(agent, "Agent has been marked gone", unreachable=False)
        return True

    def exited_executor(self, agent_id: str, framework_id: str, executor_id: str, wait_status: int) -> None:
        agent = self.agents.get(agent_id)
        if agent is None or not agent.has_executor(framework_id, executor_id):
            log.warning("ignoring exit of unknown executor %s on agent %s", executor_id, agent_id)
            return
        self._remove_executor(agent, framework_id, executor_id)
        framework = self.frameworks.get(framework_id)
        if framework is not None:
            self._send(
                framework,
                {
                    "type": "FAILURE",
                    "failure": {
                        "agent_id": {"value": agent_id},
                        "executor_id": {"value": executor_id},
                        "status": wait_status,
                    },
                },
            )

    def executor_message(self, agent_id: str, framework_id: str, executor_id: str, data: str) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is None or agent_id not in self.agents:
            log.warning("dropping executor message for framework %s", framework_id)
            return
        self._send(
            framework,
            {
                "type": "MESSAGE",
                "message": {
                    "agent_id": {"value": agent_id},
                    "executor_id": {"value": executor_id},
                    "data": data,
                },
            },
        )

    async def _ping_agents(self) -> None:
        interval = self.config.agent_ping_timeout
        while True:
            await asyncio.sleep(interval)
            agents = [a for a in self.agents.values() if not a.link.simulated]
            if not agents:
                continue
            results = await asyncio.gather(*(a.link.ping() for a in agents), return_exceptions=True)
            for agent, result in zip(agents, results, strict=True):
                if self.agents.get(agent.agent_id) is not agent:
                    continue
                if result is True:
                    agent.ping_failures = 0
                    continue
                agent.ping_failures += 1
                log.warning("agent %s missed ping %d", agent.agent_id, agent.ping_failures)
                if agent.ping_failures >= self.config.max_agent_ping_timeouts:
                    self.mark_unreachable(agent)
