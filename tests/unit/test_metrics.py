"""SI-SDR against torchmetrics' reference implementation, and the edge cases users hit."""

import itertools

import pytest
import torch
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as tm_si_sdr

from polsess.metrics import pit_si_sdr, score_batch, si_sdr, si_sdri


def _pair(scale=1.0, seed=0, shape=(6, 8000)):
    g = torch.Generator().manual_seed(seed)
    ref = torch.randn(*shape, generator=g) * scale
    est = ref * 0.7 + 0.3 * scale * torch.randn(*shape, generator=g)
    return est, ref


@pytest.mark.parametrize("scale", [1.0, 1e-3])
def test_matches_torchmetrics_to_a_thousandth_of_a_db(scale):
    est, ref = _pair(scale)
    ours = si_sdr(est, ref)  # float32 in, float64 inside
    theirs = tm_si_sdr(est.double(), ref.double(), zero_mean=False)
    assert ours.shape == (6,)
    assert torch.allclose(ours, theirs, atol=1e-3, rtol=0)


def test_float32_libraries_drift_on_quiet_signals_but_we_do_not():
    est, ref = _pair(1e-3)
    exact = tm_si_sdr(est.double(), ref.double(), zero_mean=False)
    assert torch.allclose(si_sdr(est, ref), exact, atol=1e-3)
    assert torch.allclose(si_sdr(est.half().float(), ref.half().float()),
                          tm_si_sdr(est.half().double(), ref.half().double(), zero_mean=False), atol=1e-3)


def test_is_scale_invariant_and_batched_over_leading_axes():
    est, ref = _pair(shape=(2, 3, 4000))
    assert si_sdr(est, ref).shape == (2, 3)
    assert torch.allclose(si_sdr(est * 17.0, ref), si_sdr(est, ref), atol=1e-9)


def test_silent_inputs_are_finite_and_documented():
    ref = torch.randn(4000)
    zero = torch.zeros(4000)
    assert si_sdr(zero, zero).item() == pytest.approx(0.0, abs=1e-9)
    assert si_sdr(zero, ref).item() == pytest.approx(0.0, abs=1e-6)
    silent_ref = si_sdr(ref, zero).item()
    assert torch.isfinite(torch.tensor(silent_ref)) and silent_ref < -100
    near_silent = si_sdr(ref * 1e-12, ref * 1e-12)
    assert torch.isfinite(near_silent).all()


def test_gradient_flows_for_the_loss():
    est, ref = _pair()
    est.requires_grad_(True)
    (-si_sdr(est, ref).mean()).backward()
    assert torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0


def test_si_sdri_is_score_minus_mixture_score():
    est, ref = _pair()
    mix = ref + torch.randn_like(ref)
    assert torch.allclose(si_sdri(est, ref, mix), si_sdr(est, ref) - si_sdr(mix, ref))


def test_pit_picks_the_best_permutation():
    g = torch.Generator().manual_seed(1)
    ref = torch.randn(3, 2, 4000, generator=g)
    est = ref.flip(1) + 0.1 * torch.randn(3, 2, 4000, generator=g)
    score, perm = pit_si_sdr(est, ref)
    assert perm.tolist() == [[1, 0]] * 3
    brute = torch.stack([
        torch.stack([si_sdr(est[:, list(p)], ref).mean(-1) for p in itertools.permutations(range(2))]).max(0).values
    ])[0]
    assert torch.allclose(score, brute)
    assert torch.allclose(score, tm_si_sdr(est.flip(1).double(), ref.double(), zero_mean=False).mean(-1), atol=1e-3)


def test_score_batch_single_and_two_sources():
    est, ref = _pair(shape=(4, 4000))
    mix = ref + torch.randn_like(ref)
    score, imp = score_batch(est.unsqueeze(1), ref, mix)
    assert torch.allclose(score, si_sdr(est, ref))
    assert torch.allclose(imp, si_sdr(est, ref) - si_sdr(mix, ref))
    two = torch.stack([ref, mix - ref], 1)
    score2, imp2 = score_batch(two.flip(1), two, mix)
    assert (score2 > 100).all()  # perfect up to permutation
    assert torch.allclose(imp2, score2 - si_sdr(mix.unsqueeze(1), two).mean(-1))
