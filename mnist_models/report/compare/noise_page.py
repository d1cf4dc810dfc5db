"""The ``noise`` command's page: the gate measured on runs of unchanged code (``gate_study.Study``)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ...measure.between_runs import P_REAL, Z_REAL
from ...runs.folder import RunFolder
from ..markdown import markdown_table

CLASSES = ["phase", "compiled", "cut"]


def _rates(study_pairs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (rule, apart), pairs in study_pairs.groupby(["rule", "apart"], sort=False):
        total = pairs["rows"].sum()
        rows.append({"rule": rule, "runs": apart, "pairs": len(pairs),
                     "rows per pair": f"{pairs['rows'].mean():.0f}",
                     "rows flagged": f"{pairs['flagged'].sum()} ({100 * pairs['flagged'].sum() / total:.2f}%)",
                     "rows gated": f"{pairs['gated'].sum()} ({100 * pairs['gated'].sum() / total:.2f}%)",
                     "pairs failing the gate": f"{pairs['failed'].sum()} of {len(pairs)}"})
    return pd.DataFrame(rows)


def _causes(alarms: pd.DataFrame, sigma: pd.DataFrame) -> pd.DataFrame:
    """False alarms per rule and case class, against the class's rows."""
    if alarms.empty:
        return pd.DataFrame()
    sizes = sigma.groupby(CLASSES).size().rename("cases")
    counts = alarms.groupby(["rule", *CLASSES]).agg(alarms=("gated", "size"), gated=("gated", "sum"),
                                                    median_change_pct=("change_pct", "median")).reset_index()
    counts = counts.join(sizes, on=CLASSES)
    counts["median_change_pct"] = counts["median_change_pct"].map(lambda v: f"{v:+.1f}")
    return counts


def _planted(planted: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for factor, found in planted.groupby("factor"):
        per_case = found.groupby(["phase", "model", "device", "variant", "batch_size"])["gated"].mean()
        rows.append({"planted": f"×{factor:g}", "cases × pairs": len(found),
                     "reported slower": f"{100 * found['reported'].mean():.1f}%",
                     "gated": f"{100 * found['gated'].mean():.1f}%",
                     "cases gated in ≥ 19 of 20 pairs": f"{(per_case >= 0.95).sum()} of {len(per_case)}"})
    return pd.DataFrame(rows)


def _noisiest(sigma: pd.DataFrame, limit: int = 12) -> pd.DataFrame:
    worst = sigma.sort_values("sigma", ascending=False).head(limit)
    return worst.assign(sigma_pct=(100 * worst["sigma"]).map(lambda v: f"{v:.1f}"))[
        ["phase", "model", "variant", "batch_size", "sigma_pct", "runs_a_side"]]


def _recipe(recipe: pd.DataFrame) -> pd.DataFrame:
    """Per runs a side: A/A splits failing the gate, rows flagged, and ×1.3 caught (all cases, and the
    cases whose noise lets that many runs catch it)."""
    rows = []
    for k, found in recipe.groupby("runs_a_side"):
        splits = found["split"].nunique()
        catchable = found[found["needed"] <= k]
        rows.append({"runs a side": k, "splits": splits,
                     "A/A splits failing the gate": f"{found.groupby('split')['false_alarm'].any().sum()} of {splits}",
                     "A/A rows gated": f"{100 * found['false_alarm'].mean():.2f}%",
                     "×1.3 caught (every case)": f"{100 * found['caught'].mean():.1f}%",
                     "cases quiet enough for k": f"{len(catchable) // splits} of {len(found) // splits}",
                     "×1.3 caught (those cases)": f"{100 * catchable['caught'].mean():.1f}%" if len(catchable)
                     else "–"})
    return pd.DataFrame(rows)


def render(runs: Sequence[RunFolder], study_pairs: pd.DataFrame, alarms: pd.DataFrame, planted: pd.DataFrame,
           sigma: pd.DataFrame, detect_pct: float, recipe: pd.DataFrame | None = None) -> str:
    """The page's Markdown."""
    machine = runs[0].machine_kind or "an unnamed machine"
    commits = sorted({str(r.env.get("git_commit") or "?")[:12] for r in runs})
    lines = [f"# Run-to-run noise: {len(runs)} runs on {machine}", "",
             f"Runs {runs[0].run_id} … {runs[-1].run_id}; commit {', '.join(commits)}; torch "
             f"{runs[0].env.get('torch') or '?'}. Every pair compared, the earlier run as BASE "
             f"({len(runs) * (len(runs) - 1) // 2} pairs).", "",
             "## The gate on unchanged code", "",
             "**within-run**: `compare` judging the rounds of each run as samples (Mann–Whitney and overlap "
             "tests). **between-run**: each case's run-to-run noise σ learned from the other runs (the pair "
             f"judged left out), a change real when its one-sided p is below {P_REAL:.1e} ({Z_REAL:g} standard "
             "errors for a σ known exactly, more for one learned from few runs: Student's t at its degrees of "
             "freedom). A row is flagged when it is called slower or faster, gated when it would fail the gate; "
             "on unchanged code every ""flag is a false alarm.", "", markdown_table(_rates(study_pairs)), ""]
    causes = _causes(alarms, sigma)
    if not causes.empty:
        lines += ["### Which cases raise them", "", markdown_table(causes), ""]
    if not planted.empty:
        lines += ["## Planted slowdowns (between-run rule, one run a side)", "",
                  "One case's NEW time multiplied by the factor, in every pair, every case in turn.", "",
                  markdown_table(_planted(planted)), "",
                  f"### The noisiest cases, and the runs a side that catch ×{1 + detect_pct / 100:g} 19 times "
                  "in 20", "", markdown_table(_noisiest(sigma)), ""]
    if recipe is not None and not recipe.empty:
        lines += ["## Several runs a side (the CI recipe)", "",
                  "The runs split at random into k BASE and k NEW runs, each case judged on the sides' mean "
                  "levels against the noise of their own replicates (moderated by the class's): on unchanged "
                  "code, and with NEW × 1.3.", "", markdown_table(_recipe(recipe)), ""]
    by_class = sigma.groupby(CLASSES)["sigma"].describe(percentiles=[0.5, 0.9])[["count", "50%", "90%", "max"]]
    lines += ["## Noise σ (SD of ln time per image between runs), by case class", "",
              markdown_table((100 * by_class.drop(columns="count")).round(1).assign(
                  cases=by_class["count"].astype(int)).reset_index()), ""]
    return "\n".join(lines)
