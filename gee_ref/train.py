"""``python -m gee_ref.train``: train a genetic spiking network (or its dense twin) and report.

    python -m gee_ref.train                                  # genetic digits net, embedded digits
    python -m gee_ref.train --arch cifarnet --genes 100 --data cifar10.h5 --device gpu
    python -m gee_ref.train --dense --out runs/dense         # the dense twin
    python -m gee_ref.train --from-dense runs/dense/checkpoint.h5 --out runs/compressed
    python -m gee_ref.train --genome best_genome.h5          # the evolution's best genotype (eq. 9)
    python -m gee_ref.train ... --resume                     # continue a stopped run
    python -m gee_ref.train ... --steps-per-epoch 10         # a quick run, quick evaluations too

The run itself (checkpoints, log, resume, defaults by dataset, the report) is
``gee_ref.runs.training_run``; this command parses, checks, calls it and prints the report.
"""
from __future__ import annotations

import argparse

from gee_ref import backend
from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.cli.options import add_run_options, options_of, progress_mode
from gee_ref.evolution.genome import STARTS, load_genome
from gee_ref.runs.data import read_run_data
from gee_ref.runs.report import format_report
from gee_ref.runs.training_run import (DEFAULT_ARCH, DIVERGENCE_CHOICES, OPTIMIZER_DEFAULTS, OPTION_DEFAULTS,
                                      batch_count, run_training)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m gee_ref.train",
                            description="Train a genetic (or dense) spiking network, then report its accuracy, "
                                        "parameters, spikes, energy (eq. 17) and accuracy under noise.")
    add_run_options(parser, out_help="output folder (default runs/train-<arch>-<g<genes>|dense>-seed<seed>)",
                    arch_default_help=f"default {DEFAULT_ARCH}, or the genome's")
    add = parser.add_argument
    add("--dense", action="store_true", help="train the dense twin instead of the genetic network")
    add("--start", default=OPTION_DEFAULTS["start"], choices=STARTS,
        help="starting encodings without --genome: calibrated (Kaiming-matching sigma_l, G = I; gee_ref's "
             "addition) or paper (sigma_l = 1, G = I)")
    add("--freeze-genes", dest="freeze_genes", action="store_true",
        help="keep G as it starts (or as the genome sets it); only the encodings train")
    add("--epochs", type=int, default=None, help="epochs (default by dataset: 20 digits, 200 CIFAR, 100 larger)")
    add("--genome", default=None, help="a genotype file from the evolution: its G and sigmas (eq. 9)")
    add("--from-dense", dest="from_dense", default=None, metavar="CKPT",
        help="compress this dense run's checkpoint into the genetic net (eq. 6-8), then fine-tune")
    add("--lr", type=float, default=None, help="base learning rate (sgd 0.1, adamw 1e-3)")
    add("--optimizer", default=OPTION_DEFAULTS["optimizer"], choices=sorted(OPTIMIZER_DEFAULTS))
    add("--weight-decay", dest="weight_decay", type=float, default=None, help="sgd 5e-4, adamw 0.01")
    add("--schedule", default=OPTION_DEFAULTS["schedule"], choices=("cosine", "constant"))
    add("--warmup-epochs", dest="warmup_epochs", type=int, default=OPTION_DEFAULTS["warmup_epochs"])
    add("--augment", default=None, action=argparse.BooleanOptionalAction,
        help="random crop and flip (default by dataset)")
    add("--val-fraction", dest="val_fraction", type=float, default=OPTION_DEFAULTS["val_fraction"],
        help="hold out this fraction of train for the per-epoch log (default 0: the log shows the test split)")
    add("--steps-per-epoch", dest="steps_per_epoch", type=int, default=None,
        help="cap the batches per epoch (quick runs; also caps the evaluations, see below)")
    add("--eval-batches", dest="eval_batches", type=batch_count, default=None, metavar="N|all",
        help="batches of the per-epoch evaluation, 0 for none (default: all, or --steps-per-epoch when given)")
    add("--report-batches", dest="report_batches", type=batch_count, default=None, metavar="N|all",
        help="batches of each pass of the final report (default: all, or --steps-per-epoch when given); "
             "a report on a subset says so")
    add("--noise-ratio", dest="noise_ratio", type=float, default=OPTION_DEFAULTS["noise_ratio"],
        help="noise norm / input norm for the robustness test (paper section 4.2: 0.5)")
    add("--on-divergence", dest="on_divergence", default="error", choices=DIVERGENCE_CHOICES,
        help="a loss or gradient that turns NaN or infinite: 'error' ends the run with one line (the default); "
             "'stop' ends the training there and reports the weights of the last finished epoch (or of the "
             "start), the report saying so: a diverged run as a result, as in an experiment")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    backend.xp_for(args.device)  # a GPU asked for but missing: one line, before any work
    genome = load_genome(args.genome) if args.genome else None
    data = read_run_data(args.data)
    report, path = run_training(options_of(args, OPTION_DEFAULTS), data, out=args.out, resume=args.resume,
                                progress=progress_mode(args), say=print, genome=genome,
                                on_divergence=args.on_divergence)
    print(format_report(report, path))
    return 0


if __name__ == "__main__":
    run_main(main, memory_hint="try a smaller --batch-size, --time-steps or --genes, or a smaller dataset")
