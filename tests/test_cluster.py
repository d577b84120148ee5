"""Tests for cluster.py: cluster descriptions, placement and worker seeds."""

import json
import socket

import pytest
import tensorflow as tf

import meta
import problems
from l2l.experiment import cluster
from l2l.experiment import distributed_training

_JOBS = {"ps": ["127.0.0.1:2222"],
         "worker": ["127.0.0.1:2223", "127.0.0.1:2224"]}
_ONE_LAYER = {"cw": {"net": "CoordinateWiseDeepLSTM",
                     "net_options": {"layers": (2,)}}}


def test_flags_describe_the_cluster_and_the_first_worker_is_chief():
  task = cluster.describe("127.0.0.1:2222", "127.0.0.1:2223,127.0.0.1:2224",
                          "worker", 1, environ={})
  assert task.jobs == _JOBS
  assert (task.num_workers, task.num_ps, task.rank) == (2, 1, 1)
  assert not task.is_chief and not task.is_ps
  assert task.device == "/job:worker/task:1"
  chief = cluster.describe("127.0.0.1:2222", "127.0.0.1:2223", "worker", 0,
                           environ={})
  assert chief.is_chief


def test_tf_config_with_a_chief_job_ranks_the_chief_first():
  config = {"cluster": {"ps": ["h:1"], "chief": ["h:2"], "worker": ["h:3"]},
            "task": {"type": "worker", "index": 0}}
  task = cluster.describe(environ={"TF_CONFIG": json.dumps(config)})
  assert task.worker_tasks == [("chief", 0), ("worker", 0)]
  assert (task.rank, task.is_chief, task.num_workers) == (1, False, 2)


def test_no_description_means_one_machine():
  assert cluster.describe(environ={}) is None


@pytest.mark.parametrize("args, message", [
    (("127.0.0.1:1", None, "worker", 0), "--worker_hosts"),
    (("127.0.0.1:1", "nohost", "worker", 0), "host:port"),
    (("127.0.0.1:1", "127.0.0.1:2", "chief", 0), "--job_name"),
    (("127.0.0.1:1", "127.0.0.1:2", "worker", 1), "--task_index"),
])
def test_bad_flags_name_the_flag(args, message):
  with pytest.raises(ValueError, match=message):
    cluster.describe(*args, environ={})


@pytest.mark.parametrize("ps_hosts, worker_hosts, message", [
    # TensorFlow would wrap 99999 round to port 34463.
    ("127.0.0.1:99999", "127.0.0.1:2", "--ps_hosts: '127.0.0.1:99999' has "
     "port '99999'; a port is a number from 1 to 65535."),
    ("h:0", "h:2", "--ps_hosts: 'h:0' has port '0'; a port is a number "
     "from 1 to 65535."),
    ("h:\uff12\uff12", "h:2", "--ps_hosts: 'h:\uff12\uff12' has port "
     "'\uff12\uff12'; a port is a number from 1 to 65535."),
    ("h:1", "h:2,h:1", "--worker_hosts: h:1 is also the address of a ps "
     "task; every task needs one of its own."),
    ("h:1", "h:2,h:2", "--worker_hosts: h:2 is also the address of a worker "
     "task; every task needs one of its own."),
    ("h:2222:3333", "h:2", "--ps_hosts: 'h:2222:3333' has host 'h:2222', "
     "which is no host name or IP address."),
    ("http://ps0:2222", "h:2", "--ps_hosts: 'http://ps0:2222' has host "
     "'http://ps0', which is no host name or IP address."),
    ("h:1", "ps0 :2222", "--worker_hosts: 'ps0 :2222' has host 'ps0 ', which "
     "is no host name or IP address."),
    ("[::1]", "h:2", "--ps_hosts: '[::1]' is not host:port."),
    ("h:", "h:2", "--ps_hosts: 'h:' is not host:port."),
])
def test_bad_addresses_are_named_with_what_is_wrong(ps_hosts, worker_hosts,
                                                    message):
  with pytest.raises(ValueError) as error:
    cluster.describe(ps_hosts, worker_hosts, "worker", 0, environ={})
  assert str(error.value) == message


def test_ipv6_and_dns_addresses_are_taken():
  task = cluster.describe("[::1]:2222", "::1:2223,ps0.example.com:2224",
                          "worker", 1, environ={})
  assert task.jobs == {"ps": ["[::1]:2222"],
                       "worker": ["::1:2223", "ps0.example.com:2224"]}


@pytest.mark.parametrize("ps_job, message", [
    # A string, which list() would have split into one-letter hosts.
    ("127.0.0.1:2", "TF_CONFIG must be JSON like"),
    (["localhost"], "TF_CONFIG's ps job: 'localhost' is not host:port."),
    ([2222], "TF_CONFIG's ps job: a task's address must be the text "
     "host:port, got 2222."),
    (["h:3"], "TF_CONFIG's worker job: h:3 is also the address of a ps "
     "task; every task needs one of its own."),
])
def test_tf_config_addresses_are_checked_alike(ps_job, message):
  config = {"cluster": {"ps": ps_job, "worker": ["h:3"]},
            "task": {"type": "worker", "index": 0}}
  with pytest.raises(ValueError) as error:
    cluster.describe(environ={"TF_CONFIG": json.dumps(config)})
  assert str(error.value).startswith(message)


def test_bad_tf_config_says_what_is_expected():
  with pytest.raises(ValueError, match="TF_CONFIG must be JSON"):
    cluster.describe(environ={"TF_CONFIG": "{not json"})
  with pytest.raises(ValueError, match="ps and worker"):
    cluster.describe(environ={"TF_CONFIG": json.dumps(
        {"cluster": {"worker": ["h:1"]}, "task": {"type": "worker"}})})


def test_worker_seeds_differ_per_worker_and_repeat_per_seed():
  seeds = [cluster.worker_seed(7, rank) for rank in range(4)]
  assert len(set(seeds)) == 4
  assert seeds == [cluster.worker_seed(7, rank) for rank in range(4)]
  assert cluster.worker_seed(8, 0) != seeds[0]
  assert all(0 <= s < 2**63 for s in seeds)
  assert cluster.worker_seed(None, 1) is None


@pytest.mark.parametrize("sync", [True, False])
def test_parameters_and_slots_on_ps_instance_and_state_on_the_worker(sync):
  task = cluster.Cluster(_JOBS, "worker", 1)
  with tf.Graph().as_default():
    replica = distributed_training.build_replica(
        task, lambda: meta.MetaOptimizer(**_ONE_LAYER),
        problems.quadratic(batch_size=2, num_dims=3), 2, 0.1, sync)
    devices = {v.op.name: v.device
               for v in tf.compat.v1.global_variables()}
  on_ps = sorted(name for name, device in devices.items()
                 if device == "/job:ps/task:0")
  params = ["vars_optimizer/cw_deep_lstm/" + v
            for v in ("lstm_1/w_gates", "lstm_1/b_gates", "linear/w",
                      "linear/b")]
  assert sorted(v.op.name for v in replica.optimizer.variables()) == sorted(
      params)
  assert on_ps == sorted(
      params + [p + s for p in params for s in ("/Adam", "/Adam_1")] +
      ["beta1_power", "beta2_power", "global_step"])
  assert sorted(v.op.name for v in replica.parameter_variables) == on_ps
  here = [name for name, device in devices.items()
          if device == "/job:worker/task:1"]
  assert sorted(here) == sorted(
      ["x", "w", "y", "states/state_0/state", "states/state_0/state_1"])


def test_a_port_in_use_is_one_error_naming_the_task_and_address():
  with socket.socket() as held:
    held.bind(("127.0.0.1", 0))
    held.listen()
    address = "127.0.0.1:{}".format(held.getsockname()[1])
    task = cluster.describe(address, "127.0.0.1:1", "ps", 0, environ={})
    with pytest.raises(RuntimeError, match=(
        r"^/job:ps/task:0 could not start its server on {} \(.*\); is the "
        r"port in use by another process\?$".format(address))):
      cluster.start_server(task)


def test_an_op_errors_reason_is_its_line_after_tensorflows_preamble():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    queue = tf.queue.FIFOQueue(2, tf.int32, shapes=())
    sess.run(queue.close())
    with pytest.raises(tf.errors.OutOfRangeError) as raised:
      sess.run(queue.dequeue())
  assert raised.value.message.startswith("Graph execution error:")
  assert cluster.error_reason(raised.value).startswith(
      "FIFOQueue '_0_fifo_queue' is closed and has insufficient elements")

  # gRPC's errors rule their details off with a line of "=".
  grpc = tf.errors.UnavailableError(
      None, None, "Graph execution error:\n\n:UNKNOWN:Socket closed\n"
      "=====================\n")
  assert cluster.error_reason(grpc) == ":UNKNOWN:Socket closed"
