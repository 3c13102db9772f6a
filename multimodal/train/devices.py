"""Where a training runs: one device, the N devices of this machine, or a cluster of workers.

`--devices N` trains data-parallel on one machine (MirroredStrategy over its GPUs, else N
logical CPU devices). `--multi-worker` trains on several machines with
MultiWorkerMirroredStrategy: one process per worker, each started with the same command and a
TF_CONFIG naming the cluster and its own place in it
(docs/ARCHITECTURE.md, "Training on a cluster"). TensorFlow fixes both its devices and its cluster
when its runtime starts, so both are set up here before any other TensorFlow op runs.
"""
from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass

import tensorflow as tf
from tensorflow.compiler.xla.tsl.protobuf.coordination_config_pb2 import CoordinatedJob
from tensorflow.python.eager import context

from multimodal.core.errors import DataError
from multimodal.train.multiworker import HEARTBEAT_SECONDS, ClusterError

# Seconds a worker waits for the others: to join the cluster, and in any one all-reduce. A worker
# that dies is noticed sooner (multiworker.HEARTBEAT_SECONDS); raise it when workers start far
# apart (a scheduler placing them one by one) or differ much in speed.
WORKER_TIMEOUT = 120.0
JOBS = ("chief", "worker")      # the task types MultiWorkerMirroredStrategy trains with
TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'


@dataclass(frozen=True)
class Cluster:
    """This process's place in the cluster that TF_CONFIG describes."""
    jobs: dict[str, list[str]]      # task type -> "host:port" addresses, in task order
    task_type: str
    task_index: int

    @property
    def workers(self) -> int:
        return sum(len(addresses) for addresses in self.jobs.values())

    @property
    def is_chief(self) -> bool:
        """TensorFlow's rule (multi_worker_util.is_chief): the "chief" task, else worker 0 of a
        cluster without one. The chief alone writes the run folder."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.task_index == 0

    @property
    def address(self) -> str:
        return self.jobs[self.task_type][self.task_index]

    @property
    def name(self) -> str:
        return f"{self.task_type} {self.task_index} ({self.address})"


def _bad(what: str) -> ClusterError:
    return ClusterError(f"TF_CONFIG {what}. Expected, e.g.: {TF_CONFIG_EXAMPLE}")


def _check_address(job: str, address) -> str:
    host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _bad(f'address {address!r} of the "{job}" job is not host:port (a port from 1 to 65535)')
    return address


def read_tf_config(text: str | None) -> Cluster:
    """The cluster and this task from the TF_CONFIG text, checked; the message of a ClusterError
    names the bad value."""
    if not text or not text.strip():
        raise ClusterError("--multi-worker needs the TF_CONFIG environment variable, naming every worker's "
                           f"host:port and this process's place among them, e.g. {TF_CONFIG_EXAMPLE}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(f"is not valid JSON ({exc.msg} at character {exc.pos}): {text!r}") from None
    if not isinstance(config, dict):
        raise _bad(f'must be a JSON object with "cluster" and "task", got {text!r}')
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise _bad(f'has no "cluster" object of task types and their addresses (got {cluster!r})')
    jobs: dict[str, list[str]] = {}
    for job, addresses in cluster.items():
        if job not in JOBS:
            raise _bad(f'job "{job}" is not supported: --multi-worker trains with "chief" and "worker" tasks only')
        if not isinstance(addresses, list) or not addresses:
            raise _bad(f'job "{job}" must be a non-empty list of "host:port" addresses, got {addresses!r}')
        jobs[job] = [_check_address(job, address) for address in addresses]
    if len(jobs.get("chief", [])) > 1:
        raise _bad(f'job "chief" has {len(jobs["chief"])} addresses; a cluster has at most one chief')
    every = [address for addresses in jobs.values() for address in addresses]
    for address in every:
        if every.count(address) > 1:
            raise _bad(f"lists the address {address!r} twice; every worker needs a host:port of its own")
    if not isinstance(task, dict):
        raise _bad(f'has no "task" object with this process\'s "type" and "index" (got {task!r})')
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in jobs:
        raise _bad(f"task type {task_type!r} is not a job of its cluster ({', '.join(jobs)})")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(jobs[task_type]):
        raise _bad(f'task index {index!r} is out of range: the "{task_type}" job has {len(jobs[task_type])} '
                   f"address(es), so the index is from 0 to {len(jobs[task_type]) - 1}")
    return Cluster(jobs, task_type, index)


def configure_devices(devices: int, multi_worker: bool = False) -> None:
    """Set up TensorFlow's devices: join the cluster of TF_CONFIG (multi_worker), or, on a
    CPU-only machine, split the CPU into `devices` logical devices for MirroredStrategy.

    TensorFlow accepts either only before its runtime initialises (importing it is fine; the first
    op or device listing is too late), so train() calls it before anything else touches TF."""
    if multi_worker:
        join_cluster()
        return
    cpus = tf.config.list_physical_devices("CPU")
    if devices <= 1 or tf.config.list_physical_devices("GPU") or not cpus:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * devices)
    except RuntimeError:
        # Already initialised: fine if an earlier call (an earlier run in this process) split it.
        if len(tf.config.list_logical_devices("CPU")) >= devices:
            return
        raise DataError(f"training on {devices} devices needs a fresh process (TensorFlow has already "
                        "started with one CPU device); run it from the command line with --devices") from None


_CLUSTER: dict = {}   # the process's one MultiWorkerMirroredStrategy and its Cluster, once joined


def join_cluster(timeout: float = WORKER_TIMEOUT) -> Cluster:
    """Join the cluster of TF_CONFIG (once per process: TensorFlow allows one) and return this
    worker's place in it. Blocks until every worker has joined: at most `timeout` seconds for the
    leader (the chief, else worker 0, which hosts the coordination service), up to twice that for
    the others (as measured with TensorFlow 2.21)."""
    if "cluster" in _CLUSTER:
        return _CLUSTER["cluster"]
    cluster = read_tf_config(os.environ.get("TF_CONFIG"))
    if not timeout > 0:
        raise ClusterError(f"the worker timeout must be above 0 seconds, got {timeout:g}")
    _coordinate(cluster, timeout)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout))
    except tf.errors.DeadlineExceededError:
        others = [a for addresses in cluster.jobs.values() for a in addresses if a != cluster.address]
        raise ClusterError(f"{cluster.name} waited {timeout:g} s for the other workers of TF_CONFIG to join "
                           f"({', '.join(others)}); start one process per address, or raise --worker-timeout") from None
    except (tf.errors.OpError, RuntimeError, ValueError) as exc:   # e.g. its port is taken
        raise ClusterError(f"{cluster.name} could not join the cluster: {str(exc).splitlines()[0]}") from None
    # TensorFlow's preemption notifier takes over SIGTERM and keeps the worker running; a worker
    # that Kubernetes or SLURM tells to stop should stop (the others then report it gone).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _CLUSTER.update(cluster=cluster, strategy=strategy)
    return cluster


def _coordinate(cluster: Cluster, timeout: float) -> None:
    """Set up TensorFlow's coordination service as MultiWorkerMirroredStrategy would (it keeps a
    configuration made before it), with bounds on every wait: joining is a barrier of at most
    `timeout` seconds (by default the first worker would wait forever for a missing one, holding
    the interpreter's lock, so no Python watchdog could end it), and a worker whose heartbeats stop
    for HEARTBEAT_SECONDS is declared dead to the others."""
    leader = "chief" if "chief" in cluster.jobs else "worker"
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{leader}/replica:0/task:0",
        cluster_register_timeout_in_ms=int(timeout * 1000), heartbeat_timeout_in_ms=HEARTBEAT_SECONDS * 1000,
        coordinated_jobs=[CoordinatedJob(name=job, num_tasks=len(cluster.jobs[job])) for job in JOBS
                          if job in cluster.jobs])
    context.context().coordination_service.cluster_register_with_barrier = True


def distribution(devices: int, multi_worker: bool = False) -> tuple[tf.distribute.Strategy | None, list[str], bool]:
    """(strategy or None, replica device names, GPUs?) for `devices` devices, or for every device
    of every worker of the cluster (multi_worker).

    GPUs when TensorFlow sees any (train/precision.py picks their mixed float16), else the logical
    CPUs from configure_devices. One CPU device needs no strategy: plain fit() is what runs."""
    if multi_worker:
        join_cluster()   # before the device listing below, which starts TensorFlow's runtime
    gpus = tf.config.list_logical_devices("GPU")
    if multi_worker:
        strategy = _CLUSTER["strategy"]
        # Every worker's devices, in replica order (each worker trains on all of its own).
        per_worker = [d.name.split("/device:")[-1] for d in gpus or tf.config.list_logical_devices("CPU")[:1]]
        jobs = _CLUSTER["cluster"].jobs
        replicas = [f"/job:{job}/task:{i}/device:{device}" for job in JOBS for i in range(len(jobs.get(job, [])))
                    for device in per_worker]
        return strategy, replicas[:strategy.num_replicas_in_sync], bool(gpus)
    pool = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
    if devices > len(pool):
        raise DataError(f"{devices} devices requested but TensorFlow sees {len(pool)} "
                        f"({', '.join(pool) or 'none'}); lower --devices")
    if devices == 1 and not gpus:
        return None, pool[:1], False
    return tf.distribute.MirroredStrategy(pool[:devices]), pool[:devices], bool(gpus)
