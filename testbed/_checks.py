"""Argument checks shared by testbed and testbed.nn (internal).

`check_int` is the one place that says what an integer argument is: a Python int or a numpy
integer, but not a bool (True is 1 to Python, and passing it for a count is a mistake to report,
not a number to use) and not a float (2.0 or 2.5 is refused, not truncated). It lives here, below
both packages, because testbed's core modules (circuit, draw, checkpoint, curvature) cannot import
from testbed.nn, which itself imports them; testbed.nn's real-number checks (`check_real`,
`check_scale`) stay in testbed/nn/init.py.
"""

from __future__ import annotations

import numpy as np

from .errors import TestbedError


def is_int(value: object) -> bool:
    """Whether value is an integer: an int or a numpy integer, not a bool (nor np.bool_) or a float."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_int(value: object, name: str, *, minimum: int | None = None, maximum: int | None = None,
              where: str = "", expected: str | None = None,
              type_error: type[Exception] = TypeError,
              error: type[Exception] = TestbedError) -> int:
    """value as an int, refusing a bool, a float, a str, None...; and, if given, outside min..max.

    Args:
        value: the argument to check.
        name: its name, as the caller wrote it (the message starts "{name} must be ...").
        minimum, maximum: inclusive bounds, None for none.
        where: the function or context, prefixed to the message as "{where}: " when given.
        expected: what the message says the argument must be; by default "an integer" followed
            by the bounds (">= 1", "in 1..5", "<= 9").
        type_error: raised when value is not an integer. TypeError, as testbed raises for an
            argument of the wrong kind altogether; a few callers that have always reported a bad
            count as one testbed error pass theirs (TestbedError, NetworkError).
        error: raised when value is outside minimum..maximum: a TestbedError (a ValueError) or
            the caller's subclass of it.
    Returns:
        int(value).
    Raises:
        type_error: "{where}: {name} must be {expected}, got {type} {value!r}".
        error: "{where}: {name} must be {expected}, got {value}".
    """
    if expected is None:
        if minimum is not None and maximum is not None:
            expected = f"an integer in {minimum}..{maximum}"
        elif minimum is not None:
            expected = f"an integer >= {minimum}"
        elif maximum is not None:
            expected = f"an integer <= {maximum}"
        else:
            expected = "an integer"
    prefix = f"{where}: " if where else ""
    if not is_int(value):
        raise type_error(f"{prefix}{name} must be {expected}, got {type(value).__name__} "
                         f"{value!r:.60}")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise error(f"{prefix}{name} must be {expected}, got {v}")
    return v
