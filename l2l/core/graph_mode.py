"""Lets Sonnet 2 modules be built inside TF-1.x graphs; import it first.

Sonnet 2 asserts eager mode the first time a module is constructed and caches
the answer. Constructing one module on import, while eager execution is still
on, lets later modules be built inside `tf.Graph().as_default()` blocks.
"""

import sonnet as snt

snt.Module(name="eager_probe")
