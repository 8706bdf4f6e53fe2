"""The ConvTasNet we build is torchaudio's, wired by the paper's names."""

import pytest
import torch
from torchaudio.models import ConvTasNet

from polsess.config import ConfigError, load_config
from polsess.model import build_model, count_parameters

SMALL = {"N": 32, "B": 16, "H": 32, "X": 2, "R": 1, "kernel_size": 8}


def test_names_map_to_torchaudio_and_task_sets_sources():
    cfg = load_config(overrides={f"model.convtasnet.{k}": v for k, v in SMALL.items()} | {"task": "SB"})
    model = build_model(cfg)
    assert isinstance(model, ConvTasNet)
    assert model.enc_kernel_size == 8 and model.enc_stride == 4
    assert model.num_sources == 2
    assert model.encoder.out_channels == 32
    assert model.mask_generator.input_conv.out_channels == 16
    assert model.mask_generator.conv_layers[0].conv_layers[0].out_channels == 32
    assert len(model.mask_generator.conv_layers) == 2
    out = model(torch.randn(2, 1, 800))
    assert out.shape == (2, 2, 800)


def test_paper_size_model_has_the_published_parameter_count():
    # Luo & Mesgarani 2019, Table: N=512 L=16 B=Sc=128 H=512 P=3 X=8 R=3 has 5.1M parameters.
    cfg = load_config(overrides={"N": 512, "B": 128, "H": 512, "X": 8, "R": 3, "kernel_size": 16, "task": "SB"})
    assert count_parameters(build_model(cfg)) / 1e6 == pytest.approx(5.1, abs=0.15)  # torchaudio: 4.98M


@pytest.mark.parametrize("key,value,needle", [
    ("P", 5, "only P: 3"),
    ("norm_type", "cLN", "only gLN"),
    ("causal", True, "non-causal"),
    ("stride", 4, "stride"),
    ("kernel_size", 15, "even kernel"),
    ("mask_nonlinear", "tanh", "relu or sigmoid"),
])
def test_what_torchaudio_cannot_honour_is_a_config_error(key, value, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        load_config(overrides={f"model.convtasnet.{key}": value})
    assert f"model.convtasnet.{key}" in str(err.value)
