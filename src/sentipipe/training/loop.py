"""The training loop: a budget of optimizer steps, evaluation every N steps, early stopping, checkpoints.

The loop knows nothing of the task: an objective (training/objectives.py) says
what one epoch's batches are, what one step's loss is and how the model scores
on validation data. Training runs until validation stops improving for
`patience` evaluations or `max_steps` is spent; the same defaults suit a small
corpus (many passes) and a large one (part of one). Evaluations come every
`eval_every` steps, or every epoch when an epoch is shorter: a small corpus is
checked (and stopped) after each pass over it, not after many. `max_minutes` is a safety
net only, recorded when it fires, so a run's result does not depend on the
machine's speed.

No step reads a value back from the device: losses, correct counts and
gradient norms add up on the device and are read once per evaluation, so a
GPU never waits for the host. A checkpoint after every evaluation holds
everything the rest of the run depends on (weights, optimizer, schedule,
random states, the position in the epoch, the objective's own state), so a
run killed and resumed ends, on the CPU, with exactly the weights of an
uninterrupted one.

With `ema_decay` > 0, the loop keeps an exponential moving average of the
trainable weights, updated on the device after every step; evaluations score
the average, and the best evaluation's weights are the average's. On a long,
flat validation curve the average is less noisy than any single step's weights.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from sentipipe.config import LoopParams
from sentipipe.training.device import amp_dtype_for
from sentipipe.training.distributed import DistInfo, all_reduce_max, all_reduce_sum
from sentipipe.training.objectives import Objective

STOP_REASONS = ("patience", "max_epochs", "max_steps", "max_minutes")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def warmup_cosine(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


@dataclass
class EvalMetrics:
    """One evaluation: the training figures since the last one, and validation now."""

    step: int
    epoch: float  # passes over the training data so far
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    grad_norm: float
    seconds: float  # since the last evaluation, validation included
    layer_grad_norms: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)  # the task's own validation figures

    def scalars(self) -> dict[str, float]:
        out = {k: v for k, v in asdict(self).items() if k not in ("step", "layer_grad_norms", "extra")}
        return {**out, **self.extra}

    def row(self) -> dict[str, float]:
        """One line of the history CSV."""
        return {"step": self.step, **self.scalars()}

    def score(self, monitor: str) -> float:
        """Higher is better, whatever is monitored (val_accuracy, val_loss, or one of the task's val figures)."""
        if monitor == "val_accuracy":
            return self.val_accuracy
        if monitor == "val_loss":
            return -self.val_loss
        return self.extra[monitor]


@dataclass
class TrainResult:
    best_state: dict
    best: EvalMetrics
    history: list[EvalMetrics]
    stop_reason: str
    steps: int
    eval_every: int  # the interval used: eval_every, or one epoch's steps if fewer
    budget: int = 0  # the steps allowed: max_steps, or max_epochs passes if fewer
    steps_per_epoch: int = 0


def eval_interval(params: LoopParams, steps_per_epoch: int) -> int:
    """Steps between evaluations: eval_every, at least a pass over evals_per_pass, at most one pass."""
    every = params.eval_every
    if params.evals_per_pass:
        every = max(every, math.ceil(steps_per_epoch / params.evals_per_pass))
    return max(1, min(every, steps_per_epoch))


def step_budget(params: LoopParams, steps_per_epoch: int) -> int:
    """The steps this run may take: max_epochs passes over the data, capped by max_steps."""
    if params.max_epochs is None:
        return params.max_steps
    return max(1, min(params.max_steps, math.ceil(params.max_epochs * steps_per_epoch)))


def _state_copy(model: nn.Module) -> dict:
    return copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})


class _Meter:
    """Sums kept on the device between evaluations; `read` is the one host read."""

    def __init__(self, parameters: list[nn.Parameter], device: torch.device):
        self.parameters, self.device = parameters, device
        self.reset()

    def reset(self) -> None:
        # loss sum, correct, global gradient norm sum, then each parameter's squared gradient norm sum
        self.sums = torch.zeros(3 + len(self.parameters), dtype=torch.float64, device=self.device)
        self.seen = self.steps = 0

    def add(self, loss: torch.Tensor, correct: torch.Tensor, count: int, norm: torch.Tensor) -> None:
        grads = [p.grad if p.grad is not None else p.new_zeros(()) for p in self.parameters]
        norms = torch.stack(torch._foreach_norm(grads)).double() if grads else self.sums.new_zeros(0)
        totals = torch.stack([loss.detach().double() * count, correct.double(), norm.double()])
        self.sums += torch.cat([totals, norms**2])
        self.seen += count
        self.steps += 1

    def read(self, dist: DistInfo) -> tuple[float, float, float, list[float]]:
        """Mean loss and accuracy over every rank's examples, mean global norm, RMS norm per parameter."""
        sums = self.sums.tolist()
        loss_sum, correct, seen = all_reduce_sum([sums[0], sums[1], float(self.seen)], self.device, dist)
        steps = max(self.steps, 1)
        layers = [math.sqrt(v / steps) for v in sums[3:]]
        return loss_sum / max(seen, 1), correct / max(seen, 1), sums[2] / steps, layers


class _Average:
    """An exponential moving average of the trainable weights, kept on their device.

    The decay warms up, min(decay, (1 + n) / (10 + n)) after n updates, so the
    first steps' random weights wash out quickly; the update is one fused lerp, no host read.
    """

    def __init__(self, parameters: list[nn.Parameter], decay: float):
        self.current = [p.detach() for p in parameters]  # views of the live weights: they follow every update
        self.weights = [p.clone() for p in self.current]
        self.decay, self.updates = decay, 0
        self.live: list[torch.Tensor] = []

    def update(self) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.weights, self.current, 1.0 - decay)
        self.updates += 1

    def swap_in(self) -> None:
        """The average into the model, the live weights kept aside (to evaluate the average)."""
        self.live = [p.clone() for p in self.current]
        torch._foreach_copy_(self.current, self.weights)

    def swap_out(self) -> None:
        torch._foreach_copy_(self.current, self.live)
        self.live = []

    def state_dict(self) -> dict:
        return {"weights": [w.cpu().clone() for w in self.weights], "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        torch._foreach_copy_(self.weights, [w.to(self.weights[0].device) for w in state["weights"]])
        self.updates = state["updates"]


def fit(
    model: nn.Module,
    objective: Objective,
    params: LoopParams,
    device: torch.device,
    on_eval: Callable[[EvalMetrics], None] | None = None,
    resume: dict | None = None,
    save_checkpoint: Callable[[dict], None] | None = None,
    dist: DistInfo | None = None,
) -> TrainResult:
    """Train within the step budget; return the best evaluation's weights.

    `model` may be wrapped in DistributedDataParallel; checkpoints hold the bare module's weights.
    """
    dist = dist or DistInfo()
    bare = getattr(model, "module", model)
    trainable = [(n, p) for n, p in bare.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([p for _, p in trainable], lr=params.lr, weight_decay=params.weight_decay)
    rng = np.random.default_rng(params.seed)
    epoch_rng = rng.bit_generator.state
    # the budget follows the data: one pass's steps (the first epoch's batches) times max_epochs, capped
    steps_per_epoch = max(len(objective.shard(objective.batches(np.random.default_rng(params.seed)), dist)), 1)
    budget = step_budget(params, steps_per_epoch)
    step_scheduler = eval_scheduler = None
    if params.schedule == "cosine":
        factor = warmup_cosine(budget, params.warmup_ratio)
        step_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    elif params.schedule == "plateau":
        eval_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=1)
    amp_dtype = amp_dtype_for(device, params.amp)
    scaler = torch.amp.GradScaler(enabled=amp_dtype == torch.float16)
    meter = _Meter([p for _, p in trainable], device)
    average = _Average([p for _, p in trainable], params.ema_decay) if params.ema_decay else None

    history: list[EvalMetrics] = []
    best: EvalMetrics | None = None
    best_state: dict = {}
    step, epoch, position, stale, elapsed = 0, 0, 0, 0, 0.0
    if resume is not None:
        bare.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        for sched, key in ((step_scheduler, "step_scheduler"), (eval_scheduler, "eval_scheduler")):
            if sched is not None:
                sched.load_state_dict(resume[key])
        scaler.load_state_dict(resume["scaler"])
        torch.set_rng_state(resume["torch_rng"])
        if device.type == "cuda" and resume.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
        objective.load_state_dict(resume["objective"])
        if average is not None:
            average.load_state_dict(resume["average"])
        history = [EvalMetrics(**h) for h in resume["history"]]
        best = EvalMetrics(**resume["best"])
        best_state, stale = resume["best_state"], resume["stale"]
        step, epoch, position, elapsed = resume["step"], resume["epoch"], resume["position"], resume["elapsed"]
        epoch_rng = resume["epoch_rng"]
        if resume.get("stop_reason"):
            every = resume.get("eval_every", 0)
            return TrainResult(best_state, best, history, resume["stop_reason"], step, every, budget, steps_per_epoch)

    def epoch_batches() -> list:
        """This epoch's batches: drawn from the generator's state at the epoch's start, so a resume redraws them."""
        rng.bit_generator.state = epoch_rng
        return objective.shard(objective.batches(rng), dist)

    batches = epoch_batches()
    every = (resume or {}).get("eval_every") or eval_interval(params, steps_per_epoch)
    started, since = time.monotonic() - elapsed, time.perf_counter()
    stop_reason = ""
    bar = tqdm(total=budget, initial=step, leave=False, disable=not (dist.is_main and sys.stderr.isatty()))
    model.train()
    if position == 0:
        objective.start_epoch()
    while not stop_reason:
        if position >= len(batches):  # a new epoch: new order, new state
            epoch, position = epoch + 1, 0
            epoch_rng = rng.bit_generator.state
            batches = epoch_batches()
            objective.start_epoch()
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss, correct, count = objective.step(model, batches[position], device)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        norm = nn.utils.clip_grad_norm_([p for _, p in trainable], params.clip_norm)
        scaler.step(optimizer)
        scaler.update()
        if step_scheduler is not None:
            step_scheduler.step()
        if average is not None:
            average.update()
        meter.add(loss, correct, count, norm)
        step, position = step + 1, position + 1
        bar.update(1)
        if step % every and step < budget:
            continue
        # ---- an evaluation: the one place values come back to the host
        train_loss, train_accuracy, grad_norm, layers = meter.read(dist)
        if average is not None:
            average.swap_in()  # scored, and kept if best, is the average; training goes on from the live weights
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            val = objective.validate(model, device)
        model.train()
        metrics = EvalMetrics(
            step=step,
            epoch=round(epoch + position / steps_per_epoch, 4),
            train_loss=train_loss,
            train_accuracy=train_accuracy,
            val_loss=val.pop("loss"),
            val_accuracy=val.pop("accuracy"),
            lr=optimizer.param_groups[0]["lr"],
            grad_norm=grad_norm,
            seconds=time.perf_counter() - since,
            # root mean square over the steps, per parameter tensor: vanishing or exploding gradients, layer by layer
            layer_grad_norms={n: v for (n, _), v in zip(trainable, layers)},
            extra={f"val_{k}": float(v) for k, v in val.items()},
        )
        meter.reset()
        history.append(metrics)
        if eval_scheduler is not None:
            eval_scheduler.step(metrics.score(params.monitor))
        if best is None or metrics.score(params.monitor) > best.score(params.monitor):
            best, stale, best_state = metrics, 0, _state_copy(bare)
        else:
            stale += 1
        if average is not None:
            average.swap_out()
        elapsed = all_reduce_max(time.monotonic() - started, device, dist)  # every rank stops together
        if params.patience and stale >= params.patience:
            stop_reason = "patience"
        elif step >= budget:
            stop_reason = "max_epochs" if budget < params.max_steps else "max_steps"
        elif elapsed >= params.max_minutes * 60:
            stop_reason = "max_minutes"
        # the checkpoint first, then the log: a process killed between the two resumes from this evaluation, and
        # the resumed run logs what its checkpoint holds and the store lacks (run.py); the other order logged an
        # evaluation, lost its checkpoint, and logged it again on resume
        if save_checkpoint is not None:
            save_checkpoint(
                {
                    "step": step,
                    "epoch": epoch,
                    "position": position,
                    "epoch_rng": epoch_rng,
                    "elapsed": elapsed,
                    "model": _state_copy(bare),
                    "optimizer": optimizer.state_dict(),
                    "step_scheduler": step_scheduler.state_dict() if step_scheduler else None,
                    "eval_scheduler": eval_scheduler.state_dict() if eval_scheduler else None,
                    "scaler": scaler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "objective": objective.state_dict(),
                    "average": average.state_dict() if average is not None else None,
                    "history": [asdict(h) for h in history],
                    "best": asdict(best),
                    "best_state": best_state,
                    "stale": stale,
                    "stop_reason": stop_reason,
                    "eval_every": every,
                }
            )
        if on_eval:
            on_eval(metrics)
        since = time.perf_counter()
    bar.close()
    assert best is not None
    return TrainResult(best_state, best, history, stop_reason, step, every, budget, steps_per_epoch)
