"""The loss curve of a fine-tuning run as a PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_loss(log: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Draw train loss per step (and eval loss where measured) into the PNG ``path``.

    Uses matplotlib's Agg canvas directly, so the caller's pyplot backend is left alone.

    Example:
        >>> import tempfile
        >>> log = [{"step": 1, "train_loss": 2.0, "eval_loss": None},
        ...        {"step": 2, "train_loss": 1.5, "eval_loss": 1.7}]
        >>> plot_loss(log, tempfile.mkdtemp() + "/loss.png").suffix
        '.png'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    steps = [row["step"] for row in log]
    ax.plot(steps, [row["train_loss"] for row in log], label="train", color="tab:blue")
    evals = [(row["step"], row["eval_loss"]) for row in log if row.get("eval_loss") is not None]
    if evals:
        ax.plot([s for s, _ in evals], [v for _, v in evals], label="eval", color="tab:orange",
                marker="o")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (response tokens)")
    ax.set_title(title or "fine-tuning loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
