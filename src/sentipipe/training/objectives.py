"""What one task trains on: the seam between the shared training loop and a task.

An objective answers four questions for `training.loop.fit`:

- `batches(rng)`: one epoch's training batches, shuffled by `rng` (None: the
  fixed order, used to count steps);
- `shard(batches, dist)`: this rank's share under torchrun;
- `start_epoch()` then `step(model, batch, device)` per batch: the mean loss
  (a tensor to back-propagate), the number of correct predictions (a tensor,
  left on the device: the loop reads it once per evaluation) and the number
  of predictions made (an int, known without the device);
- `validate(model, device)`: `loss` and `accuracy` on the validation split,
  plus any figure of the task's own (logged as `val_<name>`);
- `state_dict()` / `load_state_dict(state)`: whatever the objective carries
  from one step to the next (a checkpoint taken mid-epoch holds it).

Each task brings its own: the classifier's `tasks/classifier/objective.py`
scores one label per sequence; the generator's `tasks/generator/objective.py`
predicts the next unit at every position with truncated backpropagation
through time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from sentipipe.training.distributed import DistInfo


class Objective(Protocol):
    def batches(self, rng: np.random.Generator | None) -> list[Any]: ...

    def shard(self, batches: list[Any], dist: DistInfo) -> list[Any]: ...

    def start_epoch(self) -> None: ...

    def step(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]: ...

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...
