"""ch1/ holds exactly what the listings stand on: every module in it is imported, directly or not,
by a listing, and nothing else is there; no listing reaches up into the tools."""

import json
import os
import subprocess
import sys

from tests.support import ROOT

LISTINGS = ("mnist_sampler", "mlp_mnist", "cnn_mnist", "rnn_mnist")


def test_every_module_in_ch1_is_reached_from_the_listings_imports():
    program = ("import json, sys\nimport " + ", ".join(LISTINGS) + "\n"
               "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('ch1', 'tools'))))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)
    assert done.returncode == 0, done.stderr
    reached = set(json.loads(done.stdout.splitlines()[-1]))
    present = {"ch1"} | {f"ch1.{name[:-3]}" for name in os.listdir(os.path.join(ROOT, "ch1"))
                         if name.endswith(".py") and name != "__init__.py"}
    assert reached == present  # every ch1 module, and nothing of tools/
