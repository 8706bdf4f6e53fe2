"""ConvTasNet from ``torchaudio.models``, configured by the paper's names.

torchaudio's implementation is the non-causal, gLN, P=3 variant with the encoder stride fixed at
kernel_size/2; :func:`polsess.config.validate` rejects anything else before we get here.
"""

from __future__ import annotations

import torch
from torchaudio.models import ConvTasNet

from .config import Config


def build_model(cfg: Config) -> ConvTasNet:
    """``(batch, 1, time)`` → ``(batch, C, time)`` with C from the task (SB → 2, ES/EB → 1)."""
    m = cfg.model.convtasnet
    return ConvTasNet(
        num_sources=cfg.num_sources,
        enc_kernel_size=m.kernel_size,
        enc_num_feats=m.N,
        msk_kernel_size=m.P,
        msk_num_feats=m.B,
        msk_num_hidden_feats=m.H,
        msk_num_layers=m.X,
        msk_num_stacks=m.R,
        msk_activate=m.mask_nonlinear,
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
