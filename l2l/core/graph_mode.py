"""Lets Sonnet 2 modules be built inside TF-1.x graphs; import it first.

Sonnet 2's `Module.__init__` asserts, once, that TensorFlow executes eagerly
(under `tf.init_scope()`) and caches the answer. In a TF-1.x-style script the
first module is often built where eager execution is off: inside
`with tf.Graph().as_default():`, or after
`tf.compat.v1.disable_eager_execution()` / `disable_v2_behavior()`. There
the assertion fails with "Sonnet v2 requires TensorFlow 2", although the
modules themselves work in graph mode.

So on import this module builds one Sonnet module with eager execution
switched on for this thread only, by `tf.__internal__.eager_context
.eager_mode()`: TensorFlow exports that context manager for Keras, and it
changes nothing outside the `with` block (eager execution cannot be
re-enabled globally once a graph was used: `enable_eager_execution` raises
"must be called at program startup"). Sonnet's own check then passes, as it
would have in an eager program, and caches its answer; no Sonnet internal
is touched. tests/test_graph_mode.py checks every import order in a fresh
interpreter, and that this context manager still exists.
"""

import sonnet as snt
import tensorflow as tf


def allow_sonnet_in_graphs():
  """Makes Sonnet 2 build modules in graph mode from now on (idempotent)."""
  with tf.__internal__.eager_context.eager_mode():
    snt.Module(name="eager_probe")


allow_sonnet_in_graphs()
