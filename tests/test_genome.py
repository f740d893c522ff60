"""gee_ref.evolution.genome: the genotype of eq. 9 and its network."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

from gee_ref import backend
from gee_ref.evolution.genome import (Genome, GenomeError, apply_genome, genetic_layer_names, genotype_length,
                            genotype_vector, load_genome, save_genome, starting_genome)
from gee_ref.models import build_model
from gee_ref.init.kaiming import kaiming_sigma, truncation_variance_factor


def small_model(genes=6, **kwargs):
    return build_model("digits", genes=genes, channels=(4, 8), hidden=16, **kwargs)


def test_starting_genome_is_identity_and_kaiming():
    model = small_model(genes=6)
    genome = starting_genome(model)
    layers = model.genetic_layers()
    assert genome.vector.shape == (genotype_length(len(layers), 6),) == (len(layers) + 36,)
    numpy.testing.assert_array_equal(genome.G, numpy.eye(6))
    expected = [kaiming_sigma(layer.fan_in, numpy.eye(6)) for layer in layers]
    numpy.testing.assert_allclose(genome.sigmas, expected, rtol=1e-12)
    assert genome.layer_names == genetic_layer_names(model)
    assert genome.arch == "digits" and genome.genes == 6


def test_starting_genome_ignores_the_current_G():
    model = small_model(genes=5)
    before = starting_genome(model).vector.copy()
    model.genes.assign(numpy.full((5, 5), 3.0))
    numpy.testing.assert_array_equal(starting_genome(model).vector, before)


def test_save_load_round_trip(tmp_path):
    model = small_model(genes=4)
    rng = numpy.random.default_rng(1)
    genome = starting_genome(model)
    genome = genome.with_vector(genome.vector + rng.normal(size=genome.vector.size))
    path = tmp_path / "g.h5"
    save_genome(path, genome, extra={"fitness": 0.5})
    loaded = load_genome(path)
    assert loaded.vector.tobytes() == genome.vector.tobytes()
    assert (loaded.arch, loaded.genes, loaded.layer_names) == (genome.arch, genome.genes, genome.layer_names)
    assert loaded.model_config == genome.model_config
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write leaves no temporary file


@settings(deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_vector_layout(layers, genes, seed):
    rng = numpy.random.default_rng(seed)
    log_sigmas, G = rng.normal(size=layers), rng.normal(size=(genes, genes))
    genome = Genome(genotype_vector(log_sigmas, G), "digits", genes, [f"l{i}" for i in range(layers)])
    numpy.testing.assert_array_equal(genome.log_sigmas, log_sigmas)
    numpy.testing.assert_allclose(genome.sigmas, numpy.exp(log_sigmas))
    numpy.testing.assert_array_equal(genome.G, G)
    numpy.testing.assert_array_equal(genome.vector[layers:], G.reshape(-1))  # row-major vec(G)


def test_wrong_length_is_refused():
    with pytest.raises(GenomeError, match="numbers"):
        Genome(numpy.zeros(7), "digits", 2, ["a", "b"])


def test_apply_genome_sets_G_and_draws_encodings_with_the_sigmas():
    model = small_model(genes=6)
    start = starting_genome(model)
    rng = numpy.random.default_rng(3)
    G = rng.normal(size=(6, 6))
    sigmas = numpy.array([0.05, 0.2, 0.7, 1.5])[:start.num_layers]
    genome = start.with_vector(genotype_vector(numpy.log(sigmas), G))
    used = apply_genome(model, genome, backend.rng(7))
    numpy.testing.assert_allclose(used, sigmas)
    numpy.testing.assert_array_equal(model.genes.G.data, G.astype(numpy.float32))
    for layer, sigma in zip(model.genetic_layers(), sigmas):
        for p in (layer.x_out, layer.x_in):
            values = numpy.asarray(p.data, dtype=numpy.float64)
            assert numpy.abs(values).max() <= 2 * sigma * (1 + 1e-6)  # truncated at 2 sigma (eq. 9)
        pooled = numpy.concatenate([numpy.ravel(layer.x_out.data), numpy.ravel(layer.x_in.data)])
        expected_std = sigma * numpy.sqrt(truncation_variance_factor(2.0))
        assert abs(pooled.std() / expected_std - 1) < 0.25  # >= 100 samples per layer


def test_apply_genome_is_deterministic_in_the_generator():
    genome = starting_genome(small_model(genes=4))
    a, b = small_model(genes=4, seed=1), small_model(genes=4, seed=2)
    apply_genome(a, genome, backend.rng(11))
    apply_genome(b, genome, backend.rng(11))
    for la, lb in zip(a.genetic_layers(), b.genetic_layers()):
        numpy.testing.assert_array_equal(la.x_out.data, lb.x_out.data)
        numpy.testing.assert_array_equal(la.x_in.data, lb.x_in.data)


def test_apply_genome_refuses_another_network():
    genome = starting_genome(small_model(genes=4))
    with pytest.raises(GenomeError, match="genes"):
        apply_genome(small_model(genes=5), genome, backend.rng(0))
    with pytest.raises(GenomeError, match="genetic network"):
        apply_genome(build_model("digits", genetic=False, channels=(4, 8), hidden=16), genome, backend.rng(0))


def test_apply_genome_refuses_overflowing_sigmas():
    model = small_model(genes=3)
    start = starting_genome(model)
    vector = start.vector.copy()
    vector[0] = 1e4  # exp(1e4) = inf
    with numpy.errstate(over="ignore"):
        with pytest.raises(GenomeError, match="finite"):
            apply_genome(model, start.with_vector(vector), backend.rng(0))


def test_load_genome_refuses_other_files(tmp_path):
    from gee_ref.storage.checkpoint import save_checkpoint

    other = tmp_path / "other.h5"
    save_checkpoint(other, {"model": {"w": numpy.zeros(3)}}, {"epoch": 1})
    with pytest.raises(GenomeError, match="not a gee_ref genome"):
        load_genome(other)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(GenomeError, match="cannot read genome"):
        load_genome(text)
    with pytest.raises(GenomeError):
        load_genome(tmp_path / "missing.h5")


def test_describe_reads_back_an_applied_genome():
    from gee_ref.evolution.genome import describe

    model = small_model(genes=3)
    start = starting_genome(model)
    vector = start.vector + numpy.random.default_rng(5).normal(scale=0.1, size=start.vector.size)
    apply_genome(model, start.with_vector(vector), backend.rng(0))
    described = describe(model)
    numpy.testing.assert_allclose(described.sigmas, numpy.exp(vector[:start.num_layers]), rtol=1e-12)
    numpy.testing.assert_allclose(described.G, vector[start.num_layers:].reshape(3, 3), rtol=1e-6)  # float32 G
    assert described.layer_names == start.layer_names


def test_a_file_of_another_format_names_the_format_it_found(tmp_path):
    from gee_ref.storage.checkpoint import save_checkpoint

    path = tmp_path / "not-a-genome.h5"
    save_checkpoint(path, {"model": {"w": numpy.zeros(3)}}, {"format": "gee_ref-run-v2"})
    with pytest.raises(GenomeError, match="its format is 'gee_ref-run-v2', a genome's is 'gee_ref-genome"):
        load_genome(path)
