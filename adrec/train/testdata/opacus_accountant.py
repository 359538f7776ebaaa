"""Opacus' RDP accountant on the cases of adrec/train/dp_accountant_test.cc: reads a JSON file of
cases, writes ε (with its order), the per-order RDP of one step, and the noise multiplier for a
target ε, as Opacus computes them.

    opacus_accountant.py CASES.json OUT.json
"""

import json
import warnings
import sys

import opacus
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis import rdp as analysis
from opacus.accountants.utils import get_noise_multiplier


def main() -> int:
    warnings.simplefilter("ignore")  # "optimal order is the largest alpha": adrec reports the order too
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    out = {"opacus": opacus.__version__, "epsilon": [], "rdp": [], "noise": []}
    for c in cases["epsilon"]:
        acc = RDPAccountant()
        acc.history = [(h["sigma"], h["q"], h["steps"]) for h in c["history"]]
        eps, order = acc.get_privacy_spent(delta=c["delta"])
        out["epsilon"].append({"epsilon": eps, "order": order})
    for c in cases["rdp"]:
        out["rdp"].append(float(analysis.compute_rdp(q=c["q"], noise_multiplier=c["sigma"], steps=1,
                                                     orders=float(c["alpha"]))))
    for c in cases["noise"]:
        out["noise"].append(get_noise_multiplier(target_epsilon=c["epsilon"], target_delta=c["delta"],
                                                 sample_rate=c["q"], steps=c["steps"], accountant="rdp"))
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
