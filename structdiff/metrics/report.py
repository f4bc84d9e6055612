"""The human side of an evaluation: the Markdown report, histograms, and the W&B run."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

import numpy as np

OA_NOTE = (
    "OA and KL follow Yang & Lerch (2018): the density of distances between reference songs "
    "(intra-set) against the density of distances from generated to reference songs "
    "(inter-set). OA = 1 and KL = 0 when the generated songs lie as close to the reference as "
    "reference songs lie to each other; OA near 0 when they are apart."
)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def publish(lines: list[str], out: Path | None) -> str:
    """An evaluation's Markdown `lines` as one text: printed, and written to `out` (atomically)
    when given. Returns the text."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        write_atomic(Path(out), text)
    return text


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if abs(x) >= 100:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def _describe(s: dict) -> str:
    src = f"`{s['source']}`" + (f" (split {s['split']})" if s.get("split") else "")
    return f"{src}: {s['n_scored']} of {s['n_found']} songs scored, {len(s['skipped'])} skipped"


def metrics_table(aggregate: dict[str, dict], names: list[str] | None = None) -> str:
    """| metric | generated | reference | OA | KL | as Markdown, mean ± std per set."""
    rows = ["| metric | generated | reference | OA | KL |", "|---|---:|---:|---:|---:|"]
    for name in names or list(aggregate):
        a = aggregate[name]
        if not a["generated_n"] and not a["reference_n"]:
            continue
        rows.append(
            f"| {name} | {_fmt(a['generated_mean'])} ± {_fmt(a['generated_std'])} "
            f"| {_fmt(a['reference_mean'])} ± {_fmt(a['reference_std'])} "
            f"| {_fmt(a['oa'], 2)} | {_fmt(a['kl'], 2)} |"
        )
    return "\n".join(rows)


def report_markdown(result: dict, title: str, plots: list[Path]) -> str:
    lines = [
        f"# {title}",
        "",
        f"- generated: {_describe(result['generated'])}",
        f"- reference: {_describe(result['reference'])}",
        f"- time: {_fmt(result['seconds'], 1)} s",
        "",
        OA_NOTE,
        "",
        metrics_table(result["aggregate"]),
        "",
    ]
    for side in ("generated", "reference"):
        skipped = result[side]["skipped"]
        if skipped:
            lines += [f"## Skipped ({side})", ""]
            lines += [f"- `{s['file']}`: {s['reason']}" for s in skipped] + [""]
    if plots:
        lines += ["## Distributions", ""]
        lines += [f"![{p.stem}]({p.as_posix()})" for p in plots] + [""]
    return "\n".join(lines)


def plot_histograms(gen, ref, aggregate: dict[str, dict], folder: Path) -> list[Path]:
    """Overlaid density histograms of every metric (generated vs reference): one PNG for the
    whole-song metrics, one for the per-role ones."""
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    groups = {
        "whole_song": [n for n in aggregate if "/" not in n],
        "per_role": [n for n in aggregate if "/" in n],
    }
    written = []
    for group, names in groups.items():
        names = [n for n in names if np.isfinite(gen.values(n)).any()
                 or np.isfinite(ref.values(n)).any()]
        if not names:
            continue
        cols = min(6, len(names))
        rows = math.ceil(len(names) / cols)
        fig = Figure(figsize=(3.0 * cols, 2.3 * rows))
        # a fixed layout: constrained layout costs seconds on ~80 panels
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.12 / rows, top=1 - 0.2 / rows,
                            wspace=0.15, hspace=0.75)
        for i, name in enumerate(names):
            ax = fig.add_subplot(rows, cols, i + 1)
            g, r = gen.values(name), ref.values(name)
            g, r = g[np.isfinite(g)], r[np.isfinite(r)]
            both = np.concatenate([g, r])
            lo, hi = (both.min(), both.max()) if len(both) else (0.0, 1.0)
            bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 21)
            # stairs of np.histogram: one artist per set instead of a patch per bin
            for values, color, label in ((r, "tab:blue", "reference"),
                                         (g, "tab:orange", "generated")):
                if len(values):
                    dens, _ = np.histogram(values, bins=bins, density=True)
                    ax.stairs(dens, bins, fill=True, alpha=0.5, color=color, label=label)
            oa = aggregate[name]["oa"]
            ax.set_title(f"{name}\nOA {_fmt(oa, 2)}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_yticks([])
            if i == 0:
                ax.legend(fontsize=7)
        path = folder / f"{group}.png"
        tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
        fig.savefig(tmp, dpi=90)
        os.replace(tmp, path)
        written.append(path)
    return written


def log_to_wandb(result: dict, report: str, plots: list[Path], out_dir: Path, title: str) -> str:
    """Log the table, the plots and the report to a W&B run; offline unless WANDB_MODE says
    otherwise, so nothing waits on the network. Returns the run's local folder."""
    os.environ.setdefault("WANDB_MODE", "offline")
    import wandb

    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "structdiff"),
        job_type="evaluate",
        name=title,
        dir=str(out_dir),
        config={"generated": result["generated"]["source"],
                "reference": result["reference"]["source"]},
    )
    columns = ["metric", "generated_mean", "generated_std", "reference_mean", "reference_std",
               "oa", "kl", "value_oa"]
    table = wandb.Table(columns=columns)
    for name, a in result["aggregate"].items():
        table.add_data(name, *[_finite(a[c]) for c in columns[1:]])
        run.summary[f"{name}/oa"] = _finite(a["oa"])
    run.log({
        "evaluation/metrics": table,
        "evaluation/report": wandb.Html(f"<pre>{html.escape(report)}</pre>"),
        **{f"evaluation/{p.stem}": wandb.Image(str(p)) for p in plots},
    })
    artifact = wandb.Artifact("evaluation", type="evaluation")
    for name in ("metrics.json", "report.md"):
        if (out_dir / name).is_file():
            artifact.add_file(str(out_dir / name))
    run.log_artifact(artifact)
    folder = run.dir
    run.finish()
    return folder


def _finite(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None
