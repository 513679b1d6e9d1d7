"""A Circuit is immutable, as its cached plans and gradient circuit assume: no stale answers.

Before, `c.consts[...] = ...` or `c.op[...] = ...` changed what `print(c)` showed while `c(x)`,
`value_and_grad` and `hvp` kept returning the old circuit's numbers from the cached plans.
"""

import numpy as np
import pytest
from support import EXECUTORS

import testbed


def _circuit():
    return testbed.trace(lambda x: testbed.sin(x[0]) * x[1] + 2.0, 2)


@pytest.mark.parametrize("name", ["op", "a0", "a1", "consts", "outputs", "level"])
def test_arrays_are_read_only(name):
    c = _circuit()
    x = np.array([0.3, 0.4])
    for e in EXECUTORS:  # every executor's plan is made and cached
        testbed.value_and_grad(c, x, e), testbed.hvp(c, x, x, e)
    before = repr(c)
    with pytest.raises(ValueError, match="read-only"):
        getattr(c, name)[-1] = 0
    assert repr(c) == before


@pytest.mark.parametrize("name", ["l", "op", "consts", "outputs", "_cache"])
def test_attributes_cannot_be_rebound(name):
    c = _circuit()
    with pytest.raises(AttributeError, match="immutable"):
        setattr(c, name, getattr(c, name))
    with pytest.raises(AttributeError, match="immutable"):
        delattr(c, name)


def test_a_circuit_owns_copies_of_the_arrays_it_was_built_from():
    c = _circuit()
    op, consts = np.array(c.op), np.array(c.consts)
    c2 = testbed.Circuit(c.l, op, c.a0, c.a1, consts, c.outputs)
    x = np.array([0.3, 0.4])
    f = c2(x)
    consts[consts == 2.0] = 5.0  # the caller's arrays change afterwards: the circuit does not
    op[op == testbed.primitives.SIN.code] = testbed.primitives.COS.code
    assert c2(x) == f == c(x)
    for e in EXECUTORS:
        assert testbed.value_and_grad(c2, x, e)[0] == testbed.value_and_grad(c, x, e)[0]
