"""Meta-training on several machines with TensorFlow's distributed runtime.

The cluster is TensorFlow's own: `tf.train.ClusterSpec`, one
`tf.distribute.Server` per task, between-graph replication placed with
`tf.compat.v1.train.replica_device_setter`, and sessions on the servers'
`grpc://` targets. This module describes the cluster (from `TF_CONFIG` or the
`--ps_hosts/--worker_hosts/--job_name/--task_index` flags), starts servers,
decides where each variable lives and gives every worker its own seed:

- `ps` tasks hold the meta-optimizer's parameters, the meta-optimizer's (Adam's)
  slots and the shared counters;
- each worker keeps its optimizee variables and unroll state (the problem
  instance it draws, the nets' recurrent state) on its own task, so workers
  never see each other's instances.

Importing this module defines no command-line flags; `define_flags` does.
"""

import collections
import ipaddress
import json
import os

from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

# A chief task, when the cluster has one, is the first worker.
WORKER_JOBS = ("chief", "worker")
PS_JOB = "ps"

# Names of the queues, on the ps tasks, through which the chief tells the
# parameter servers to stop and the workers tell the chief they are done.
_SHUTDOWN_QUEUE = "l2l_ps_shutdown_{}"
_DONE_QUEUE = "l2l_workers_done"

_VARIABLE_OPS = ("VarHandleOp", "VariableV2", "Variable")


class Cluster(collections.namedtuple("Cluster", "jobs, job_name, task_index")):
  """Where this process sits in a cluster.

  Attributes:
    jobs: `{job name: [host:port, ...]}`, with a `ps` job and a `worker` (and
      optionally a one-task `chief`) job.
    job_name: this task's job.
    task_index: this task's index in its job.
  """

  __slots__ = ()

  @property
  def spec(self):
    """The `tf.train.ClusterSpec`."""
    return tf.train.ClusterSpec(self.jobs)

  @property
  def worker_tasks(self):
    """`(job, index)` of every worker, the chief first."""
    return [(job, i) for job in WORKER_JOBS
            for i in range(len(self.jobs.get(job, ())))]

  @property
  def num_workers(self):
    return len(self.worker_tasks)

  @property
  def num_ps(self):
    return len(self.jobs[PS_JOB])

  @property
  def is_ps(self):
    return self.job_name == PS_JOB

  @property
  def rank(self):
    """This worker's position among the workers (0: the chief)."""
    return self.worker_tasks.index((self.job_name, self.task_index))

  @property
  def is_chief(self):
    """True for the worker that initialises, evaluates and saves."""
    return not self.is_ps and self.rank == 0

  @property
  def device(self):
    """This task's device prefix, e.g. `/job:worker/task:1`."""
    return "/job:{}/task:{}".format(self.job_name, self.task_index)


def check_address(address):
  """Raises ValueError unless `address` is one task's `host:port`.

  The port must be 1-65535 in ASCII digits (TensorFlow wraps a larger one
  round to another port, and fails on other digits); the host has no
  spaces or scheme, and a colon in it only as an IPv6 address, bracketed
  (`[::1]:2222`) or not.

  Args:
    address: the text given for one task.

  Raises:
    ValueError: saying what is wrong with it.
  """
  if not isinstance(address, str):
    raise ValueError("a task's address must be the text host:port, got "
                     "{!r}".format(address))
  host, _, port = address.rpartition(":")
  if not host or not port or address.endswith("]"):
    raise ValueError("{!r} is not host:port".format(address))
  if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
    raise ValueError("{!r} has port {!r}; a port is a number from 1 to "
                     "65535".format(address, port))
  bare_host = host[1:-1] if host.startswith("[") and host.endswith("]") else (
      host)
  if "://" in host or any(c.isspace() for c in host) or (
      ":" in bare_host and not _is_ipv6(bare_host)):
    raise ValueError("{!r} has host {!r}, which is no host name or IP "
                     "address".format(address, host))


def _is_ipv6(text):
  try:
    ipaddress.IPv6Address(text)
  except ValueError:
    return False
  return True


def _checked_addresses(jobs, where):
  """Checks every job's addresses, and that no two tasks share one.

  Args:
    jobs: `{job name: [host:port, ...]}`.
    where: how the messages name the source of each job, with `{job}`
      (e.g. "--{job}_hosts").

  Raises:
    ValueError: naming the source, the address and what is wrong.
  """
  seen = {}
  for job, addresses in jobs.items():
    for address in addresses:
      try:
        check_address(address)
      except ValueError as error:
        raise ValueError("{}: {}.".format(where.format(job=job),
                                          error)) from None
      if address in seen:
        raise ValueError("{}: {} is also the address of a {} task; every "
                         "task needs one of its own.".format(
                             where.format(job=job), address, seen[address]))
      seen[address] = job


def _hosts(text):
  """The addresses of a comma-separated list (checked by the caller)."""
  return [h.strip() for h in text.split(",") if h.strip()]


def from_flags(ps_hosts, worker_hosts, job_name, task_index):
  """The cluster the `--ps_hosts/--worker_hosts/...` flags describe.

  Args:
    ps_hosts: "host:port,host:port" of the parameter servers.
    worker_hosts: "host:port,..." of the workers (the first is the chief).
    job_name: "ps" or "worker".
    task_index: this task's index in its job.

  Returns:
    A `Cluster`.

  Raises:
    ValueError: naming the flag that is missing or wrong.
  """
  if not ps_hosts or not worker_hosts:
    raise ValueError("A cluster needs both --ps_hosts and --worker_hosts "
                     "(comma-separated host:port lists).")
  jobs = {PS_JOB: _hosts(ps_hosts), "worker": _hosts(worker_hosts)}
  if not jobs[PS_JOB] or not jobs["worker"]:
    raise ValueError("--ps_hosts and --worker_hosts must each name at least "
                     "one host:port.")
  _checked_addresses(jobs, "--{job}_hosts")
  return _checked(jobs, job_name, task_index, "--job_name", "--task_index")


def from_tf_config(text):
  """The cluster a `TF_CONFIG` JSON string describes.

  Args:
    text: `{"cluster": {"ps": [...], "worker": [...], "chief": [...]},
      "task": {"type": "worker", "index": 0}}`.

  Returns:
    A `Cluster`.

  Raises:
    ValueError: if the JSON does not describe a ps/worker cluster and a task.
  """
  try:
    config = json.loads(text)
    jobs = config["cluster"]
    for job, addresses in jobs.items():
      if not isinstance(addresses, list):
        raise TypeError("its {} job is {!r}, not a list of host:port".format(
            job, addresses))
    task = config["task"]
    job_name, task_index = task["type"], task.get("index", 0)
  except (ValueError, KeyError, TypeError, AttributeError) as error:
    raise ValueError(
        "TF_CONFIG must be JSON like {{\"cluster\": {{\"ps\": [...], "
        "\"worker\": [...]}}, \"task\": {{\"type\": \"worker\", \"index\": 0}}}}"
        " ({}).".format(error)) from error
  unknown = set(jobs) - set(WORKER_JOBS) - {PS_JOB}
  if unknown or not jobs.get(PS_JOB) or not (jobs.get("worker") or
                                             jobs.get("chief")):
    raise ValueError("TF_CONFIG's cluster must have ps and worker (or chief) "
                     "jobs and no others, got {}.".format(sorted(jobs)))
  if len(jobs.get("chief", ())) > 1:
    raise ValueError("TF_CONFIG's cluster may have one chief, got {}.".format(
        len(jobs["chief"])))
  _checked_addresses(jobs, "TF_CONFIG's {job} job")
  return _checked(jobs, job_name, task_index, "TF_CONFIG task type",
                  "TF_CONFIG task index")


def _checked(jobs, job_name, task_index, job_label, index_label):
  if job_name not in jobs:
    raise ValueError("{} must be one of {}, got {!r}.".format(
        job_label, ", ".join(sorted(jobs)), job_name))
  if (isinstance(task_index, bool) or not isinstance(task_index, int) or
      not 0 <= task_index < len(jobs[job_name])):
    raise ValueError("{} must be an integer in [0, {}) for job {!r}, got "
                     "{!r}.".format(index_label, len(jobs[job_name]),
                                    job_name, task_index))
  return Cluster(jobs, job_name, task_index)


def describe(ps_hosts=None, worker_hosts=None, job_name=None, task_index=0,
             environ=None):
  """The cluster this process belongs to, or None on one machine.

  The flags win over `TF_CONFIG`; with neither, training runs in one process.

  Args:
    ps_hosts: the `--ps_hosts` flag.
    worker_hosts: the `--worker_hosts` flag.
    job_name: the `--job_name` flag.
    task_index: the `--task_index` flag.
    environ: the environment (default `os.environ`).

  Returns:
    A `Cluster`, or None.

  Raises:
    ValueError: for an incomplete or inconsistent description.
  """
  environ = os.environ if environ is None else environ
  if ps_hosts or worker_hosts or job_name:
    return from_flags(ps_hosts, worker_hosts, job_name, task_index)
  if environ.get("TF_CONFIG"):
    return from_tf_config(environ["TF_CONFIG"])
  return None


def define_flags():
  """Defines the cluster flags of train.py (once)."""
  if "ps_hosts" in flags.FLAGS:
    return
  flags.DEFINE_string("ps_hosts", None, "Cluster training: comma-separated "
                      "host:port of the parameter servers (or set TF_CONFIG).")
  flags.DEFINE_string("worker_hosts", None, "Cluster training: comma-separated "
                      "host:port of the workers; the first is the chief, "
                      "which evaluates and saves.")
  flags.DEFINE_string("job_name", None, "Cluster training: this task's job, "
                      "ps or worker.")
  flags.DEFINE_integer("task_index", 0, "Cluster training: this task's index "
                       "in its job.")
  flags.DEFINE_boolean("sync_replicas", True, "Cluster training: average the "
                       "meta-gradients of all workers in each meta-step "
                       "(SyncReplicasOptimizer); --nosync_replicas lets each "
                       "worker apply its own meta-steps.")
  flags.DEFINE_float("cluster_timeout", 600.0, "Cluster training: seconds a "
                     "worker waits for the parameter servers at start, for "
                     "one synchronous meta-step, and (the chief) for the "
                     "other workers to finish.")


def from_parsed_flags(values):
  """`describe` for parsed absl flags (those of `define_flags`)."""
  return describe(values.ps_hosts, values.worker_hosts, values.job_name,
                  values.task_index)


def error_reason(error):
  """What a TensorFlow op error says went wrong, in one line.

  In graph mode its message starts "Graph execution error:", then where
  the op was defined and its name; the reason follows ("FIFOQueue ... is
  closed", "Socket closed").

  Args:
    error: a `tf.errors.OpError`.

  Returns:
    The reason's line, or the message's first line if none is found.
  """
  lines = [line.strip() for line in error.message.splitlines()
           if line.strip()]
  reasons = [line for line in lines if not line.startswith(
      ("Graph execution error", "Detected at node", "File ", "Node:", "[["))
             and any(c.isalpha() for c in line)]  # Not a rule of "=".
  return reasons[-1] if reasons else (lines[0] if lines else
                                      type(error).__name__)


def start_server(cluster):
  """Starts this task's `tf.distribute.Server`.

  Args:
    cluster: a `Cluster`.

  Returns:
    The running server.

  Raises:
    RuntimeError: if it cannot listen on its address (a port in use).
  """
  address = cluster.jobs[cluster.job_name][cluster.task_index]
  try:
    server = tf.distribute.Server(cluster.spec, job_name=cluster.job_name,
                                  task_index=cluster.task_index,
                                  config=session_config(cluster),
                                  protocol="grpc", start=True)
  except tf.errors.OpError as error:
    raise RuntimeError(
        "{} could not start its server on {} ({}); is the port in use by "
        "another process?".format(cluster.device, address,
                                  error_reason(error))) from error
  logging.info("Started %s (%s) at %s", cluster.device, address,
               server.target)
  return server


def session_config(cluster):
  """A session config that only needs the ps tasks and this task up.

  Device filters keep a worker from waiting for the other workers, so the
  cluster goes on when one dies and a restarted worker can join.

  Args:
    cluster: a `Cluster`.

  Returns:
    A `tf.compat.v1.ConfigProto`.
  """
  config = tf.compat.v1.ConfigProto(
      device_filters=["/job:" + PS_JOB, cluster.device])
  # On a shared machine, one thread pool per task avoids oversubscription.
  config.inter_op_parallelism_threads = 1
  return config


def device_function(cluster, parameter_names):
  """Places the meta-optimizer's variables on the ps tasks, the rest here.

  `replica_device_setter` places every variable on a ps task and every other
  op on this worker; the optimizee's variables and the unroll state are
  variables too but belong to this worker, so only `parameter_names` go to
  the ps tasks. Adam's slots follow their parameter (they are created
  colocated with it).

  Args:
    cluster: a `Cluster` (a worker's).
    parameter_names: op names of the variables to keep on the ps tasks.

  Returns:
    A device function for `tf.device`.
  """
  setter = tf.compat.v1.train.replica_device_setter(
      worker_device=cluster.device, cluster=cluster.spec)
  parameter_names = frozenset(parameter_names)

  def place(op):
    if op.type in _VARIABLE_OPS and op.name not in parameter_names:
      return op.device or cluster.device
    return setter(op)
  return place


def worker_seed(seed, rank):
  """The graph seed of worker `rank`: distinct per worker, fixed per seed.

  Args:
    seed: the run's `--seed`, or None (unseeded: every worker draws afresh).
    rank: the worker's rank (0: the chief).

  Returns:
    An int, or None.
  """
  if seed is None:
    return None
  return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0] >> 1)


def shutdown_queue(ps_index):
  """The queue on ps task `ps_index` that tells it to stop."""
  with tf.device("/job:{}/task:{}".format(PS_JOB, ps_index)):
    return tf.queue.FIFOQueue(-1, tf.int32, shapes=(),
                              shared_name=_SHUTDOWN_QUEUE.format(ps_index),
                              name="ps_shutdown_{}".format(ps_index))


def done_queue():
  """The queue on ps task 0 where each worker leaves its rank when done."""
  with tf.device("/job:{}/task:0".format(PS_JOB)):
    return tf.queue.FIFOQueue(-1, tf.int32, shapes=(),
                              shared_name=_DONE_QUEUE, name="workers_done")


def serve(cluster):
  """Runs a parameter server until the chief says training has ended.

  Args:
    cluster: a `Cluster` whose task is a ps task.
  """
  server = start_server(cluster)
  graph = tf.Graph()
  with graph.as_default():
    stop = shutdown_queue(cluster.task_index).dequeue()
  config = tf.compat.v1.ConfigProto(device_filters=[cluster.device])
  with tf.compat.v1.Session(server.target, graph=graph, config=config) as sess:
    logging.info("Parameter server %s is serving; it stops when the chief "
                 "has finished.", cluster.device)
    sess.run(stop)
  logging.info("The chief has finished; parameter server %s stops.",
               cluster.device)
