"""Write the pictures that README.md and docs/theory.md show into docs/img/ (run by `make docs`).

Every picture is drawn by testbed's own functions from seeded inputs, so rerunning this script
gives the same files.
"""

import pathlib

import numpy as np

import testbed
import testbed.nn as nn
from testbed.random_circuits import random_circuit

OUT = pathlib.Path(__file__).parent / "img"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    c = testbed.trace(lambda x: testbed.sin(x[0] * x[1]) + x[2] / (x[0] * x[0] + 1.0), 3)
    x = np.array([1.0, 2.0, 3.0])
    figures = {
        "circuit.png": testbed.draw(c, x),
        "backprop.png": testbed.draw_backprop(c, x),
        "grad.png": testbed.draw_grad(c),
        "sweep.png": testbed.draw_sweep(c, x, columns=3),
    }
    rng = np.random.default_rng(0)
    big = random_circuit(np.random.default_rng(0), 2000, 10)  # beyond 200 nodes: drawn in bands
    figures["large_circuit.png"] = testbed.draw(big)
    net = nn.init_network([3, 16, 16, 1], "tanh", "xavier_normal", rng)
    xb = rng.uniform(-2, 2, size=(8, 3))
    figures["network.png"] = nn.draw(net, xb, np.sin(xb[:, 0]))
    deep = nn.init_network([8] + [32] * 15 + [1], "sigmoid", "standard", rng)
    xd = rng.normal(size=(8, 8))
    figures["network_vanishing.png"] = nn.draw(deep, xd, np.zeros(8))
    for name, fig in figures.items():
        fig.savefig(OUT / name, metadata={"Software": None})  # no version string: same bytes each run
        print(OUT / name)


if __name__ == "__main__":
    main()
