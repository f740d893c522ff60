"""Pilot for the evolution's default step sizes per block (``--sigma0-log-sigma``, ``--sigma0-genes``).

    OPENBLAS_NUM_THREADS=1 python bench/pilot_sigma0.py paper > bench/results/pilot-sigma0.jsonl
    OPENBLAS_NUM_THREADS=1 python bench/pilot_sigma0.py calibrated 1 >> bench/results/pilot-sigma0.jsonl

For each (s_log, s_G) (the first N of CONFIGS with a second argument): 16 genotypes of the
generation-0 distribution around the start (the digits net, g = 16, the embedded digits, 20
SGD steps, batch 32), each evaluated with 2 draws on common random numbers. One JSON line each:
how many diverged, the validation loss's mean and spread, the Spearman rank correlation of draw
0 against draw 1 (whether a generation's ranking is the genotypes' or the draws'), mean R_S.
"""
import itertools, json, sys, time
import numpy as np
from scipy.stats import spearmanr
from gee_ref.cmaes import CMAES
from gee_ref.data.datasets import default_digits_path, load_dataset
from gee_ref.evolution.evaluation import EvaluationSettings, IndividualTask, evaluate_population
from gee_ref.evolution.genome import starting_genome
from gee_ref.models import build_from_config

start_name = sys.argv[1] if len(sys.argv) > 1 else "paper"  # the start of the search
path = default_digits_path()
images, _, classes = load_dataset(path, "train")
template = build_from_config({"arch": "digits", "genetic": True, "genes": 16, "num_classes": len(classes),
                              "image_shape": list(images.shape[1:]), "time_steps": 4, "seed": 0, "device": "cpu"})
start = starting_genome(template, start_name)
L = start.num_layers
CONFIGS = [(0.5, 0.0625), (0.25, 0.0625), (1.0, 0.0625), (0.5, 0.025), (0.5, 0.1)]
for s_log, s_g in (CONFIGS if len(sys.argv) < 3 else CONFIGS[:int(sys.argv[2])]):
    s = EvaluationSettings(genome_template=start, data_path=str(path), seed=0, val_fraction=0.2, eval_steps=20,
                           eval_epochs=None, batch_size=32, lr=0.1, draws=2)
    X = np.asarray(CMAES(start.vector, 1.0, popsize=16, seed=1, stds=[s_log] * L + [s_g] * 256).ask())
    t0 = time.time()
    records = evaluate_population([IndividualTask(s, x, 0, i) for i, x in enumerate(X)])
    d0 = np.array([r["draws"][0]["loss"] if r["draws"] else np.nan for r in records])
    d1 = np.array([r["draws"][1]["loss"] if len(r["draws"]) > 1 else np.nan for r in records])
    ok = np.isfinite(d0) & np.isfinite(d1)
    rho = spearmanr(d0[ok], d1[ok]).correlation if ok.sum() > 2 else float("nan")
    print(json.dumps({"start": start_name, "s_log": s_log, "s_G": s_g, "nonfinite": int((~ok).sum()),
                      "loss_mean": float(np.nanmean(d0)), "loss_sd": float(np.nanstd(d0[ok], ddof=1)),
                      "spearman_draw0_draw1": float(rho), "r_s_mean": float(np.mean([r["r_s"] for r in records])),
                      "seconds": round(time.time() - t0, 1)}), flush=True)
