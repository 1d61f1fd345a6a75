"""The autocast policy of every loop: which dtype a precision name means on a device, one autocast context, the
gradient scaler that fp16 needs, and the float32 island inside which the losses compute.

``auto`` picks bf16 on GPUs that support it (else fp16, with a scaler) and on CPUs with native bf16 (AVX512-BF16 or
AMX), else fp32: on CPUs without it bf16 matrix products are emulated and many times slower than fp32.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from mimae.config import ConfigError


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX; elsewhere bf16 matrix products are emulated and many times slower."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision name (auto, bf16, fp16, fp32) on a device, or None for fp32.

    ``auto`` picks bf16 on GPUs that support it (else fp16) and on CPUs with native bf16 (else fp32); an explicit
    ``bf16`` is honoured on any CPU and falls back to fp32 on GPUs without it; ``fp16`` means fp32 on a CPU.
    """
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if precision == "auto":
            return torch.bfloat16 if bf16_ok else torch.float16
        return {"bf16": torch.bfloat16 if bf16_ok else None, "fp16": torch.float16}.get(precision)
    if precision == "auto":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return torch.bfloat16 if precision == "bf16" else None


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse an explicit precision that the device cannot train in (rather than silently training in another)."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision=fp16 trains on GPUs only (fp16 autocast with a gradient scaler); on this "
                          f"{device.type} use bf16 or fp32, or auto")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.precision=bf16: this GPU has no bf16; use fp16 (with a gradient scaler) or auto")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` in ``dtype`` on the device type, or no autocast at all for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _to_float32(value):
    return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


def float32_loss(fn):
    """Decorator: run ``fn`` with autocast off on CPU and GPU and its floating-point tensor arguments in float32.

    Every loss that multiplies feature matrices (InfoNCE, CLUB, NT-Xent, Barlow Twins, uniformity) is computed
    this way, so a bf16 run computes it exactly as an fp32 run would from the same features (autocast would
    otherwise run the products in bf16 whatever the inputs' dtype).
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            return fn(*map(_to_float32, args), **{k: _to_float32(v) for k, v in kwargs.items()})
    return wrapper


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """The gradient scaler: active for fp16 autocast (whose small gradients underflow), a pass-through otherwise."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
