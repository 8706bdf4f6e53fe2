"""Scale-invariant SDR (Le Roux et al., 2019): the score PolSESS users report and tune on.

One function serves as the training loss, the validation score and the mixture baseline of SI-SDRi,
so the three can never drift apart. It computes in float64: with float32 the ``eps`` terms already
move quiet signals (×1e-3) by about 1 dB between libraries.

Silent inputs: ``eps`` (float64 machine epsilon) sits in every energy, so nothing is ever NaN.
A silent estimate *and* reference give 0 dB; a silent estimate against a real reference gives
about 0 dB as well (no information either way); a real estimate against a silent reference gives a
very low but finite value (about ``10·log10(eps / ‖estimate‖²)``, e.g. −157 dB for unit energy).
"""

from __future__ import annotations

import itertools

import torch

EPS = torch.finfo(torch.float64).eps


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """SI-SDR in dB over the last axis.

    Args:
        estimate: ``(..., time)``.
        reference: ``(..., time)``, broadcastable to ``estimate``.

    Returns:
        ``(...)`` float64 scores in dB, differentiable with respect to ``estimate``.
    """
    est = estimate.to(torch.float64)
    ref = reference.to(torch.float64)
    alpha = ((est * ref).sum(-1, keepdim=True) + EPS) / ((ref * ref).sum(-1, keepdim=True) + EPS)
    target = alpha * ref
    noise = target - est
    ratio = ((target * target).sum(-1) + EPS) / ((noise * noise).sum(-1) + EPS)
    return 10 * torch.log10(ratio)


def si_sdri(estimate: torch.Tensor, reference: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """SI-SDR improvement over the unprocessed input, in dB.

    Args:
        estimate, reference: ``(..., time)``.
        mixture: ``(batch, time)`` input; broadcast over any source axis of ``reference``.
    """
    if mixture.dim() < reference.dim():
        mixture = mixture.unsqueeze(-2)
    return si_sdr(estimate, reference) - si_sdr(mixture, reference)


def pit_si_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Permutation-invariant SI-SDR: the best source order per item, averaged over sources.

    Args:
        estimate, reference: ``(batch, sources, time)``.

    Returns:
        ``(scores, perms)``: ``(batch,)`` mean SI-SDR over sources under the best permutation, and
        ``(batch, sources)`` the estimate index assigned to each reference.
    """
    n = reference.shape[-2]
    perms = list(itertools.permutations(range(n)))
    # pairwise[b, i, j] = SI-SDR of estimate i against reference j
    pairwise = si_sdr(estimate.unsqueeze(-2), reference.unsqueeze(-3))
    scores = torch.stack([pairwise[:, list(p), list(range(n))].mean(-1) for p in perms], dim=-1)
    best, idx = scores.max(dim=-1)
    table = torch.tensor(perms, device=estimate.device)
    return best, table[idx]


def score_batch(
    estimate: torch.Tensor, reference: torch.Tensor, mixture: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-item (SI-SDR, SI-SDRi) for one or several sources, permutation-invariant when several.

    Args:
        estimate: ``(batch, sources, time)`` model output.
        reference: ``(batch, time)`` or ``(batch, sources, time)``.
        mixture: ``(batch, time)``.
    """
    if reference.dim() == 2:
        reference = reference.unsqueeze(1)
    if reference.shape[1] == 1:
        score = si_sdr(estimate[:, :1], reference).squeeze(1)
    else:
        score, _ = pit_si_sdr(estimate, reference)
    baseline = si_sdr(mixture.unsqueeze(1), reference).mean(-1)
    return score, score - baseline
