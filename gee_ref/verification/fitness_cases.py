"""Golden cases for the fitness terms (paper eq. 13-16; DESIGN.md section 4, reconstructions).

    R_T = mean_l mean_{n,i} 1/(T-1) sum_t |S^l_{t+1} - S^l_t|          (eq. 13)
    P = |G| / sum |G|,  R_S = -sum P log P / log(g^2)                  (eq. 14-15)
    F = L_cls - lambda(gen) (alpha R_T + beta R_S),  lambda = 1/(1+gen) (eq. 16)

computed by ``gee_ref.evolution.fitness``. Spike inputs are 0/1 arrays [T, N, ...], one per layer, of
different shapes; G has entries of both signs and one exact zero (0 log 0 = 0).
"""
from __future__ import annotations

import numpy

from gee_ref.verification.case import Case
from gee_ref.evolution import fitness
from gee_ref.measure.spikes import SpikeCounts

FORMULAS = {
    "temporal_difference": "R_T = mean over layers l of mean over (n, i) of 1/(T-1) sum_t |S_{t+1} - S_t|",
    "spatial_entropy": "P = |G| / sum|G|; R_S = -sum P log P / log(g^2), natural log, 0 log 0 = 0",
    "dynamic_fitness": "F = L_cls - lambda(gen) (alpha R_T + beta R_S), lambda(gen) = 1/(1 + gen), minimised",
}


def temporal_difference_case(shapes, rate):
    def build(name, rng) -> Case:
        spikes = [(rng.random(s) < rate).astype(numpy.float64) for s in shapes]
        counts = SpikeCounts()
        counts.add(spikes)
        value = counts.temporal_difference()
        return Case(name=name, kind="fitness", function="gee_ref.measure.spikes.SpikeCounts.temporal_difference",
                    description=f"R_T (eq. 13) of {len(shapes)} spiking layers, T = {shapes[0][0]}, "
                                f"firing probability {rate}",
                    params={"layers": len(shapes)}, conventions={"formula": FORMULAS["temporal_difference"]},
                    inputs={f"spikes/{i}": s for i, s in enumerate(spikes)},
                    outputs={"r_t": numpy.float64(value)},
                    extra_attrs={"call": "r_t = temporal_difference([inputs/spikes/0, inputs/spikes/1, ...])"})
    return build


def spatial_entropy_case(genes, concentrated=False):
    def build(name, rng) -> Case:
        G = rng.standard_normal((genes, genes))
        if concentrated:
            G *= numpy.exp(3.0 * rng.standard_normal((genes, genes)))  # a few entries dominate: low R_S
        G[0, -1] = 0.0
        value = fitness.spatial_entropy(G)
        return Case(name=name, kind="fitness", function="gee_ref.evolution.fitness.spatial_entropy",
                    description=f"R_S (eq. 14-15) of a {genes}x{genes} G{', concentrated' if concentrated else ''}",
                    params={"genes": genes}, conventions={"formula": FORMULAS["spatial_entropy"]},
                    inputs={"G": G}, outputs={"r_s": numpy.float64(value)},
                    extra_attrs={"call": "r_s = spatial_entropy(inputs/G)"})
    return build


def dynamic_fitness_case():
    def build(name, rng) -> Case:
        generations = numpy.arange(6)
        loss = 2.3 * rng.random(6)
        r_t, r_s = rng.random(6), rng.random(6)
        alpha, beta = 0.5, 0.25
        values = numpy.array([fitness.dynamic_fitness(float(loss[i]), float(r_t[i]), float(r_s[i]),
                                                      int(generations[i]), alpha, beta) for i in range(6)])
        return Case(name=name, kind="fitness", function="gee_ref.evolution.fitness.dynamic_fitness",
                    description="F (eq. 16) for generations 0..5 with alpha = 0.5, beta = 0.25",
                    params={"alpha": alpha, "beta": beta}, conventions={"formula": FORMULAS["dynamic_fitness"]},
                    inputs={"loss": loss, "r_t": r_t, "r_s": r_s, "generation": generations},
                    outputs={"fitness": values},
                    extra_attrs={"call": "fitness[i] = dynamic_fitness(loss[i], r_t[i], r_s[i], generation[i], "
                                         "alpha, beta)"})
    return build


FITNESS_CASES = {
    "fitness/temporal_difference/three_layers": temporal_difference_case([(4, 2, 3, 2, 2), (4, 2, 5), (4, 2, 3)], 0.3),
    "fitness/temporal_difference/dense_firing": temporal_difference_case([(6, 3, 4)], 0.8),
    "fitness/spatial_entropy/g4": spatial_entropy_case(4),
    "fitness/spatial_entropy/g6_concentrated": spatial_entropy_case(6, concentrated=True),
    "fitness/dynamic_fitness/generations0to5": dynamic_fitness_case(),
}
