"""The faster step is the same model: shifted depthwise convs and the compiled ConvTasNet give
torchaudio's outputs and gradients within float tolerance, and compiling falls back cleanly."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from polsess.config import load_config
from polsess.fast_conv import ShiftedDepthwiseConv1d, can_shift, speed_up, swap_depthwise, wants_compile
from polsess.model import build_model

SMALL = {"model.convtasnet.N": 32, "model.convtasnet.B": 16, "model.convtasnet.H": 32, "model.convtasnet.X": 4,
         "model.convtasnet.R": 2}


@pytest.mark.parametrize("dilation", [1, 2, 4, 8, 128])
@pytest.mark.parametrize("kernel", [3, 5])
def test_shifted_depthwise_equals_the_grouped_conv_with_gradients(dilation, kernel):
    torch.manual_seed(dilation * 10 + kernel)
    conv = nn.Conv1d(12, 12, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation, groups=12).double()
    shifted = ShiftedDepthwiseConv1d(copy.deepcopy(conv))
    x = torch.randn(3, 12, 200, dtype=torch.double, requires_grad=True)
    y_ref, y = conv(x), shifted(x)
    assert y.shape == y_ref.shape == (3, 12, 200)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(y)
    ref_grads = torch.autograd.grad(y_ref, [x, conv.weight, conv.bias], g)
    grads = torch.autograd.grad(y, [x, shifted.weight, shifted.bias], g)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_only_same_padded_depthwise_convs_are_shiftable():
    assert can_shift(nn.Conv1d(8, 8, 3, padding=2, dilation=2, groups=8))
    assert not can_shift(nn.Conv1d(8, 8, 3, padding=1, groups=4))  # not depthwise
    assert not can_shift(nn.Conv1d(8, 8, 3, padding=0, groups=8))  # shrinks the signal
    assert not can_shift(nn.Conv1d(8, 8, 4, padding=2, groups=8))  # even kernel
    assert not can_shift(nn.Conv1d(8, 8, 3, padding=1, stride=2, groups=8))
    with pytest.raises(ValueError):
        ShiftedDepthwiseConv1d(nn.Conv1d(8, 8, 1))


def test_the_swapped_convtasnet_is_torchaudios_with_the_same_parameters():
    torch.manual_seed(0)
    model = build_model(load_config(None, SMALL)).double()
    fast = copy.deepcopy(model)
    assert swap_depthwise(fast) == 4 * 2  # one per block: X·R
    assert list(fast.state_dict()) == list(model.state_dict())  # checkpoints load either way
    x = torch.randn(2, 1, 4000, dtype=torch.double)
    torch.testing.assert_close(fast(x), model(x), rtol=1e-10, atol=1e-10)
    fast(x).square().sum().backward()
    model(x).square().sum().backward()
    for (name, a), (_, b) in zip(fast.named_parameters(), model.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-10, msg=name)


def test_auto_compiles_long_runs_on_cuda_only():
    assert wants_compile("auto", torch.device("cuda")) and not wants_compile("auto", torch.device("cpu"))
    assert wants_compile("auto", torch.device("cuda"), steps=5000)
    assert not wants_compile("auto", torch.device("cuda"), steps=200)  # the compile would not pay back
    assert wants_compile("True", torch.device("cpu")) and not wants_compile("False", torch.device("cuda"))
    assert wants_compile("on", torch.device("cpu")) and not wants_compile("off", torch.device("cuda"))
    with pytest.raises(ValueError, match=r"training\.compile"):
        wants_compile("yes", torch.device("cpu"))


def test_a_compiler_that_fails_leaves_the_eager_model_as_it_was():
    torch.manual_seed(0)
    model = build_model(load_config(None, SMALL))
    before = copy.deepcopy(model)
    lines = []

    def broken(_model):
        raise RuntimeError("no C++ compiler found\nmore detail")

    out, how = speed_up(model, torch.randn(2, 1, 800), log=lines.append, compiler=broken)
    assert out is model and how.startswith("eager (compile failed: RuntimeError: no C++ compiler found")
    assert lines == ["torch.compile is not available here (RuntimeError: no C++ compiler found); training the "
                     "eager model"]
    assert [type(m) for m in model.modules()] == [type(m) for m in before.modules()]  # the grouped convs are back
    assert all(p.grad is None for p in model.parameters())


def test_speed_up_with_a_working_compiler_swaps_and_keeps_gradients_clean():
    model = build_model(load_config(None, SMALL))
    out, how = speed_up(model, torch.randn(2, 1, 800), compiler=lambda m: m)  # the identity "compiler"
    assert out is model and how == "compiled, 8 depthwise convs as shifted multiply-adds"
    assert sum(isinstance(m, ShiftedDepthwiseConv1d) for m in model.modules()) == 8
    assert all(p.grad is None for p in model.parameters())
