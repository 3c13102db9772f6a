"""Which arithmetic the image encoder trains in: mixed precision where the hardware has it natively.

The image encoder holds nearly all of a step's work (bench/PROFILE_step.md); it trains under a
Keras mixed policy (float32 weights, float16 / bfloat16 compute) when the device computes that
natively: float16 on a GPU, bfloat16 on a CPU with AVX-512 BF16 or AMX (where oneDNN runs its
convolutions in bfloat16; elsewhere bfloat16 is emulated and slower). The tabular branch, the
fusion head and the output stay float32, and after training the whole model is switched to
float32 (`models.assembly.compute_in_float32`), so the saved model predicts and is explained in
float32 on any machine (docs/ARCHITECTURE.md, "Speed of a step").
"""
from __future__ import annotations

from pathlib import Path

from multimodal.core.errors import DataError

PRECISIONS = ("auto", "float32")
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU's flags (Linux /proc/cpuinfo) include native bfloat16 arithmetic."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:   # not Linux, or hidden: no claim, float32
        return False
    flags = {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[-1].split()}
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def image_policy(precision: str, on_gpu: bool, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The Keras dtype policy of the image encoder while training: "mixed_float16",
    "mixed_bfloat16" or "float32"."""
    if precision not in PRECISIONS:
        raise DataError(f"unknown precision '{precision}'; use {' or '.join(PRECISIONS)}")
    if precision == "float32":
        return "float32"
    if on_gpu:
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bfloat16(cpuinfo) else "float32"
