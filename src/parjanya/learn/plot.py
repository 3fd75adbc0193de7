"""Cost-quality curves as a PNG (`parjanya eval --plot`); matplotlib comes with the `plot` extra."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from parjanya.learn.evaluate import ScorerReport

__all__ = ["plot_curves"]


def plot_curves(reports: Sequence[ScorerReport], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the extra
        raise SystemExit("--plot needs matplotlib: pip install 'parjanya[plot]'") from error
    datasets = sorted({r.data for r in reports})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.5), squeeze=False)
    for axis, data in zip(axes[0], datasets, strict=True):
        for report in (r for r in reports if r.data == data):
            curve = report.curve
            relative = curve.cost / max(curve.all_strong_cost, 1e-12)
            axis.plot(relative, curve.quality, label=f"{report.scorer} ({report.auroc:.2f})")
        axis.set_title(f"{data}: quality against cost")
        axis.set_xlabel("cost relative to all-strong")
        axis.set_ylabel("mean answer quality")
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
