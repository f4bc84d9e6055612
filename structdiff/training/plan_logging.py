"""Sample plans in a training run's log: a table of forms and chords, and a picture."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from structdiff.data.plan_tensor import PlanGrid
from structdiff.data.song import Plan


def plan_rows(plans: list[Plan], styles: list[str], grid: PlanGrid) -> list[list[str]]:
    """One row per plan: style, form, chords bar by bar (`C G | Am F | ...`)."""
    rows = []
    for plan, style in zip(plans, styles):
        bars: list[list[str]] = [[] for _ in range(grid.n_bars)]
        for c in plan.chords:
            bar = int(np.searchsorted(grid.bars, c.onset, side="right") - 1)
            bars[max(bar, 0)].append(plan.chord_label(c))
        rows.append([style, plan.form, " | ".join(" ".join(b) or "-" for b in bars)])
    return rows


def plan_picture(plans: list[Plan], styles: list[str], grid: PlanGrid, path: Path) -> Path:
    """Each plan as a strip: sections as coloured bands with their labels, chord roots as a
    line over the bars (height = root relative to the key)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(8, grid.n_bars * 0.35), 1.3 * len(plans) + 0.4))
    end = grid.end
    colors = [f"C{i}" for i in range(10)]
    for i, (plan, style) in enumerate(zip(plans, styles)):
        ax = fig.add_subplot(len(plans), 1, i + 1)
        labels = sorted({s.label for s in plan.sections})
        for s in plan.sections:
            x0 = grid.bars[s.start_bar]
            x1 = grid.bars[s.start_bar + s.n_bars] if s.start_bar + s.n_bars < grid.n_bars else end
            ax.axvspan(x0, x1, color=colors[labels.index(s.label) % 10], alpha=0.25)
            ax.text(x0, 11.5, s.label, fontsize=8, fontweight="bold", va="top")
        onsets = [c.onset for c in plan.chords if c.quality != "N"]
        roots = [(c.root - (plan.key.tonic if plan.key else 0)) % 12 for c in plan.chords
                 if c.quality != "N"]
        ax.step(onsets, roots, where="post", color="k", lw=1)
        ax.set_xlim(0, end)
        ax.set_ylim(-0.5, 12)
        ax.set_yticks([0, 5, 7])
        ax.set_yticklabels(["I", "IV", "V"], fontsize=7)
        ax.set_xticks(grid.bars[::4])
        ax.set_xticklabels([str(b + 1) for b in range(0, grid.n_bars, 4)], fontsize=7)
        ax.set_title(f"{style}: {plan.form}", fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return path


def log_plans(logger, plans: list[Plan], styles: list[str], grid: PlanGrid, step: int) -> None:
    """To W&B when the run logs there (a table and an image); otherwise nothing."""
    experiment = getattr(logger, "experiment", None)
    if experiment is None or not hasattr(experiment, "log"):
        return
    import wandb

    table = wandb.Table(columns=["style", "form", "chords"], data=plan_rows(plans, styles, grid))
    with tempfile.TemporaryDirectory() as tmp:
        picture = plan_picture(plans, styles, grid, Path(tmp) / "plans.png")
        experiment.log({"samples/plans": table, "samples/picture": wandb.Image(str(picture)),
                        "trainer/global_step": step})
