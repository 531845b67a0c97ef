"""The connection to a Ray cluster (`init_ray`), and `LoopbackRayCluster`: a real Ray cluster on one
machine, on loopback, for tests and benchmarks: a head node and `workers` more nodes, each its own
raylet and worker processes, on 127.0.0.1 with a unique temp dir; stopped by PID (never `ray stop`).

Nothing is written outside that temp dir: `Cluster` writes its address file under Ray's default
temp dir (`/tmp/ray` unless `RAY_TMPDIR` says otherwise), which exists only on a machine where Ray
ran before, so `RAY_TMPDIR` points inside this cluster's own dir for as long as it runs.

The nodes are started with `ray.cluster_utils.Cluster` (Ray's own multi-node test harness):
with the loopback settings, `ray start --address` refuses to add a second node ("Windows and
OSX" single-node mode), and without them the nodes listen on the routable address.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
from typing import Any

import psutil

log = logging.getLogger(__name__)

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


def init_ray(address: str) -> dict[str, Any]:
    """Connect to `address`, or start a local Ray bound to loopback for `local`."""
    import ray

    if ray.is_initialized():
        return ray.cluster_resources()
    # The engine's own settings (teacher cache, fault injection) reach every worker process.
    runtime_env = {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("DISTILNAS_")}}
    if address == "local":
        # Loopback only (docs/ARCHITECTURE.md, "Ray"): these must be in the environment of the node.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(include_dashboard=False, runtime_env=runtime_env)
    else:
        ray.init(address=address, runtime_env=runtime_env)  # workers' logs stream back to this driver
    nodes = [n for n in ray.nodes() if n["Alive"]]
    log.info("Ray at %s: %d node(s) %s, resources %s", address, len(nodes),
             [n["NodeManagerAddress"] for n in nodes], ray.cluster_resources())
    return ray.cluster_resources()


class LoopbackRayCluster:
    def __init__(self, workers: int = 0, cpus_per_node: int = 2) -> None:
        self.workers, self.cpus = workers, cpus_per_node
        self.temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths are limited
        os.makedirs(os.path.join(self.temp_dir, "ray"))  # Ray's default temp dir, made ours
        self.own_env = {**LOOPBACK_ENV, "RAY_TMPDIR": self.temp_dir}
        self.env = {**os.environ, **self.own_env}
        self.cluster = None
        self.address = ""
        self._saved_env: dict[str, str | None] = {}

    def __enter__(self) -> LoopbackRayCluster:
        # The nodes are children of this process: they inherit these settings.
        self._saved_env = {k: os.environ.get(k) for k in self.own_env}
        os.environ.update(self.own_env)
        from ray.cluster_utils import Cluster

        try:
            self.cluster = Cluster(initialize_head=True, head_node_args={
                "num_cpus": self.cpus, "temp_dir": self.temp_dir, "include_dashboard": False})
            for _ in range(self.workers):
                self.cluster.add_node(num_cpus=self.cpus)
            self.cluster.wait_for_nodes()
            self.address = self.cluster.address
        except BaseException:
            self.__exit__()
            raise
        return self

    def processes(self) -> list[psutil.Process]:
        """Every live process of this cluster: those whose command line names this cluster's temp
        dir, and their descendants (Ray's agents rename their command lines)."""
        found: dict[int, psutil.Process] = {}
        for p in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                if p.info["status"] == psutil.STATUS_ZOMBIE or p.pid == os.getpid():
                    continue
                if any(self.temp_dir in part for part in (p.info["cmdline"] or [])):
                    found[p.pid] = p
                    found.update({c.pid: c for c in p.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE})
            except psutil.NoSuchProcess:
                continue
        return list(found.values())

    def listening_addresses(self) -> set[str]:
        """The IP addresses this cluster's processes listen on."""
        pids = {p.pid for p in self.processes()}
        return {c.laddr.ip for c in psutil.net_connections(kind="inet") if c.pid in pids and c.status == "LISTEN"}

    def __exit__(self, *exc: object) -> None:
        import ray

        if ray.is_initialized():  # a driver still connected (a search that raised): Ray refuses to remove its node
            ray.shutdown()
        if self.cluster is not None:
            self.cluster.shutdown()  # kills exactly the processes of its nodes, by PID
        # Anything left (workers of a node), by PID; again, while any is found: a process that was
        # starting as the first round looked (a worker a raylet forked) is found by the next.
        for _ in range(3):
            procs = self.processes()
            if not procs:
                break
            for p in procs:
                try:
                    p.send_signal(signal.SIGTERM)
                except psutil.NoSuchProcess:
                    pass
            _, alive = psutil.wait_procs(procs, timeout=10)
            for p in alive:
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(alive, timeout=10)  # killed, and gone before anyone looks again
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        for key, value in self._saved_env.items():  # RAY_TMPDIR must not outlive its dir
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
