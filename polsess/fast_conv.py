"""A faster ConvTasNet step without forking torchaudio: its depthwise conv rewritten, the model compiled.

Why: each of ConvTasNet's X·R blocks has a depthwise dilated ``Conv1d(H, H, P, groups=H)``, which
cuDNN runs slowly (pytorch#75747: a plain kernel was 10× faster, backward 65 → 5.5 ms), and the
step is launch-bound, not math-bound (benchmarks/gpu_step.py --profile). Written as P shifted
multiply-adds, the depthwise conv is element-wise work ``torch.compile`` fuses with the PReLU and
gLN around it; the compiled model then runs far fewer, larger kernels.

Both are swaps, not a fork: :func:`swap_depthwise` replaces the modules in torchaudio's own
``ConvTasNet`` by ones holding *the same* ``weight``/``bias`` parameters (state dicts and
checkpoints are interchangeable with the eager model), and :func:`speed_up` compiles the result,
falling back to eager, with the reason, wherever compiling fails (no C++ compiler, an old GPU, an
unsupported platform). ``training.compile`` (``auto``: on for a CUDA run of at least
``AUTO_MIN_STEPS`` steps, where the compile pays; off on CPU) chooses, and
``tests/unit/test_fast_conv.py`` checks outputs and gradients against the eager module.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

COMPILE_CHOICES = ("auto", "on", "off")
_YAML_BOOLS = {"True": "on", "False": "off"}  # YAML reads an unquoted on/off as a bool


class ShiftedDepthwiseConv1d(nn.Module):
    """``Conv1d(C, C, k, groups=C, dilation=d, padding=d·(k-1)/2)`` as k shifted multiply-adds.

    ``(batch, C, time)`` → ``(batch, C, time)``: ``y[:, c, t] = b[c] + Σ_j w[c, 0, j] · x[:, c, t + (j - (k-1)/2)·d]``
    with zeros outside the signal, exactly what the grouped conv computes. ``weight``
    ``(C, 1, k)`` and ``bias`` ``(C,)`` are the replaced conv's own Parameters.
    """

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        if not can_shift(conv):
            raise ValueError(f"not a 'same'-padded depthwise Conv1d with an odd kernel: {conv}")
        self.weight = conv.weight
        self.bias = conv.bias
        self.dilation = int(conv.dilation[0])
        self.kernel_size = int(conv.kernel_size[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.dilation * (self.kernel_size - 1) // 2
        xp = F.pad(x, (pad, pad))
        time = x.shape[-1]
        out = None
        for j in range(self.kernel_size):
            tap = self.weight[:, :, j] * xp[..., j * self.dilation: j * self.dilation + time]  # w: (C, 1) → broadcast
            out = tap if out is None else out + tap
        return out if self.bias is None else out + self.bias[:, None]

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, kernel_size={self.kernel_size}, dilation={self.dilation}"


def can_shift(conv: nn.Module) -> bool:
    """A depthwise, stride-1, zero-and-'same'-padded Conv1d with an odd kernel: what ConvTasNet uses."""
    if not isinstance(conv, nn.Conv1d):
        return False
    k, d = conv.kernel_size[0], conv.dilation[0]
    return (conv.groups == conv.in_channels == conv.out_channels and conv.stride == (1,) and k % 2 == 1
            and conv.padding_mode == "zeros" and conv.padding == (d * (k - 1) // 2,))


def swap_depthwise(model: nn.Module) -> int:
    """Replace every shiftable depthwise Conv1d inside ``model`` in place; return how many."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if can_shift(child):
                setattr(parent, name, ShiftedDepthwiseConv1d(child))
                swapped += 1
    return swapped


# ``auto`` compiles a run of at least this many training steps: the one-off compile (43 s for the
# small model on this CPU, paid back after 114 s of eager training; benchmarks/gpu_step.py --compile)
# must not make a trial of a few minutes lose.
AUTO_MIN_STEPS = 1000


def wants_compile(choice: str, device: torch.device, steps: int | None = None, fixed_length: bool = True) -> bool:
    """``on``/``off`` as said; ``auto`` compiles on CUDA a run of ``steps`` ≥ AUTO_MIN_STEPS (None: long)
    whose batches have one length (``data.segment_seconds`` set: whole utterances of varying length
    would recompile at each new one). Never on the CPU by default: a CPU run is a test or a demo."""
    choice = _YAML_BOOLS.get(choice, choice)
    if choice not in COMPILE_CHOICES:
        raise ValueError(f"training.compile: {choice!r}; use auto, on or off")
    long_enough = steps is None or steps >= AUTO_MIN_STEPS
    return choice == "on" or (choice == "auto" and device.type == "cuda" and long_enough and fixed_length)


def speed_up(model: nn.Module, example: torch.Tensor, log: Callable[[str], None] = print,
             compiler: Callable[[nn.Module], nn.Module] | None = None) -> tuple[nn.Module, str]:
    """``(model to train, what was done)``: the depthwise convs swapped and the model compiled, tried
    on ``example`` ``(batch, 1, time)`` (forward and backward) so a failure shows here, not mid-epoch.

    ``compiler`` defaults to ``torch.compile`` (shapes fixed by the segment length, so ``dynamic=False``).
    On any failure the model is put back as it was (the eager convs, sharing the same parameters).
    """
    compiler = compiler or (lambda m: torch.compile(m, dynamic=False))
    originals = {name: mod for name, mod in model.named_modules() if can_shift(mod)}
    swapped = swap_depthwise(model)
    try:
        compiled = compiler(model)
        compiled(example).float().sum().backward()
        model.zero_grad(set_to_none=True)
        return compiled, f"compiled, {swapped} depthwise convs as shifted multiply-adds"
    except Exception as exc:  # the compiler's errors are many kinds; any of them means "run eager"
        for name, mod in originals.items():
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, mod)
        model.zero_grad(set_to_none=True)
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:200]
        log(f"torch.compile is not available here ({reason}); training the eager model")
        return model, f"eager (compile failed: {reason})"
