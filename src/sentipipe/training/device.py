"""Devices are found, not configured: CUDA when present; what autocast may use; moving a batch there."""

from __future__ import annotations

import os

import torch

from sentipipe.errors import ConfigError

# cuDNN runs recurrent layers in bf16 only from 9.13 (pytorch#164411), and PyTorch's own CUDA LSTM
# kernel has no bf16 version (pytorch#116925): below that, recurrent layers autocast to fp16.
CUDNN_BF16_RNN = 91300


def resolve_device(name: str) -> torch.device:
    """`auto` finds CUDA when present; asking for CUDA on a host without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' was asked for but no CUDA device is available; use 'auto'")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def choose_amp_dtype(device_type: str, enabled: bool, bf16_supported: bool, cudnn_version: int | None):
    """The autocast dtype a recurrent network can run in on this runtime (None: full precision).

    bf16 needs the GPU to support it and cuDNN to run RNNs in it; otherwise fp16
    (with a gradient scaler), which every cuDNN version runs. The CPU trains in fp32.
    """
    if not enabled or device_type != "cuda":
        return None
    if bf16_supported and cudnn_version is not None and cudnn_version >= CUDNN_BF16_RNN:
        return torch.bfloat16
    return torch.float16


def amp_dtype_for(device: torch.device, enabled: bool):
    if device.type != "cuda":
        return None
    # cuDNN switched off by the user runs RNNs on the native CUDA kernels, which have no bf16: as if absent.
    usable = torch.backends.cudnn.is_available() and torch.backends.cudnn.enabled
    cudnn = torch.backends.cudnn.version() if usable else None
    return choose_amp_dtype(device.type, enabled, torch.cuda.is_bf16_supported(), cudnn)


def set_deterministic(enabled: bool) -> None:
    """Reproducible kernels for GPU retraining: deterministic algorithms, a fixed cuBLAS workspace, no autotuning."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn_only: an op with no deterministic CUDA kernel warns (naming itself) instead of ending the run.
    # Not called when off already (the default): the call imports torch._inductor, 1.4 s of every training stage.
    if enabled or torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = enabled


def to_device(device: torch.device, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The one place a batch moves to the device: pinned and copied without blocking the host on CUDA."""
    if device.type != "cuda":
        return tensors
    return tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)
