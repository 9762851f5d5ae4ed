"""How long a hub model that is not cached takes to fail when the hub is unreachable, with and
without HF_HUB_OFFLINE, against a plain `from_pretrained` in the same situation. Issue 1/8: within 5 s.

    python benchmarks/bench_offline.py [--quick]   (--quick: leaves out the plain from_pretrained, ~50 s here)
"""

import argparse
import subprocess
import sys

from common import emit_result, report

MAGIC = """
import os, time
os.environ.pop("HF_HUB_OFFLINE", None) if {unset} else os.environ.__setitem__("HF_HUB_OFFLINE", "1")
from IPython.testing.globalipapp import start_ipython
ip = start_ipython()
ip.run_line_magic("load_ext", "creative_magics")
ip.run_line_magic("config", "CreativeMagics.profile = 'default'")
import transformers  # import cost is not part of the wait
t = time.perf_counter()
ip.run_cell("%%story -m someone/never-downloaded\\nHello")
print(time.perf_counter() - t)
"""
PLAIN = """
import os, time
os.environ.pop("HF_HUB_OFFLINE", None)
from transformers import AutoModelForCausalLM
t = time.perf_counter()
try:
    AutoModelForCausalLM.from_pretrained("someone/never-downloaded")
except Exception:
    pass
print(time.perf_counter() - t)
"""


def seconds(code, timeout=180):
    env = {k: v for k, v in __import__("os").environ.items() if k != "HF_HUB_OFFLINE"}
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
        return float(done.stdout.split()[-1])
    except subprocess.TimeoutExpired:
        return float("inf")


def main(quick=False):
    offline = seconds(MAGIC.format(unset=False))
    probed = seconds(MAGIC.format(unset=True))
    if quick:
        report(
            "Uncached hub model, hub unreachable: time to the one-line error (--quick: no plain from_pretrained)",
            [("%%story, HF_HUB_OFFLINE=1", f"{offline:.2f} s"), ("%%story, network not configured (2 s probe)", f"{probed:.2f} s")],
        )
        emit_result("uncached hub id, hub unreachable: %%story / plain from_pretrained", f"{probed:.1f} s (plain not run: --quick)", None)
        return
    plain = seconds(PLAIN)
    report(
        "Uncached hub model, hub unreachable: time to the one-line error",
        [
            ("%%story, HF_HUB_OFFLINE=1", f"{offline:.2f} s"),
            ("%%story, network not configured (2 s probe)", f"{probed:.2f} s"),
            ("plain from_pretrained, same network", f"{plain:.2f} s"),
            ("ratio %%story / plain", f"{probed / plain:.3f}"),
        ],
    )
    emit_result(
        "uncached hub id, hub unreachable: %%story / plain from_pretrained",
        f"fails in {probed:.1f} s vs {plain:.1f} s",
        probed / plain,
        offline_s=offline,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the slow plain from_pretrained")
    main(parser.parse_args().quick)
