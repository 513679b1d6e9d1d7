"""The quick start in testbed.nn's docstring runs and does what its comments say."""

import textwrap

import numpy as np

import testbed.nn as nn


def test_quick_start_runs(capsys):
    code = nn.__doc__.split("(a test runs it):")[1].split("The jax.numpy twin")[0]
    scope: dict = {}
    exec(textwrap.dedent(code), scope)
    printed = capsys.readouterr().out.split()
    assert printed[1].startswith("0.7395") and printed[3].startswith("0.0311")
    history = scope["result"].history
    assert abs(history.loss.iloc[0] - 0.74) < 0.005 and history.loss.iloc[-1] < 0.035
    assert scope["g"].dx.shape == scope["x"].shape
    net, HW = scope["net"], scope["HW"]
    assert HW[0] is None and [HW[k].shape for k in net.layers] == [net.W[k].shape for k in net.layers]
    assert np.isfinite(scope["J"])
