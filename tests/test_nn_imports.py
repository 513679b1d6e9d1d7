"""`import testbed.nn` stays light: no jax until a jax twin is asked for."""

import subprocess
import sys


def test_import_does_not_load_jax():
    code = ("import sys, testbed.nn as nn; assert 'jax' not in sys.modules, 'jax loaded'; "
            "nn.to_jax_loss('tanh'); assert 'jax' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
