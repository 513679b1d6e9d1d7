"""testbed: differentiable circuits, backprop and its theorems, cross-validated against JAX.

    import numpy as np, testbed
    c = testbed.trace(lambda x: testbed.sin(x[0] * x[1]) + x[2] / x[0], 3)   # f: R^3 -> R
    print(c)                                      # the circuit, one node per line
    x = np.array([1.0, 2.0, 3.0])
    f, g = testbed.value_and_grad(c, x)           # O(N + l): one forward, one reverse sweep
    Hv = testbed.hvp(c, x, np.ones(3))            # O(N + l): forward mode through grad(c)
"""

from .check import check_grads
from .circuit import Circuit, Tracer, from_nodes, trace
from .costs import op_counts
from .draw import draw, draw_backprop, draw_grad, draw_sweep, to_dot
from .errors import (
    CircuitError,
    DomainError,
    GradientCheckError,
    NonFiniteError,
    ShapeError,
    TestbedError,
    TraceError,
)
from .jax_bridge import to_jax
from .primitives import OPS, cos, dsigmoid, exp, log, relu, sech2, sigmoid, sin, step, tanh
from .transforms import (
    fd_grad,
    grad,
    hessian,
    hvp,
    hvp_circuit,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    jvp_circuit,
    value_and_grad,
    vjp,
)

__all__ = [
    "OPS", "Circuit", "curvature", "CircuitError", "DomainError", "GradientCheckError", "NonFiniteError",
    "ShapeError", "TestbedError", "TraceError", "Tracer", "check_grads", "cos",
    "draw", "draw_backprop", "draw_grad", "draw_sweep", "dsigmoid", "exp", "fd_grad",
    "from_nodes", "grad", "hessian", "hvp", "hvp_circuit", "jacfwd", "jacobian", "jacrev", "jvp",
    "jvp_circuit", "log", "op_counts",
    "relu", "sech2", "sigmoid", "sin", "step", "tanh", "to_dot", "to_jax", "trace", "value_and_grad", "vjp",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # testbed.curvature needs scipy (a third of a second to import): loaded on first use only
    if name == "curvature":
        import importlib

        return importlib.import_module(".curvature", __name__)
    raise AttributeError(f"module 'testbed' has no attribute {name!r}")
