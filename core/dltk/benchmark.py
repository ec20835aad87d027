"""``dltk benchmark``: reproduce a published protocol over several seeds and report it beside the
published numbers.

Benchmarks are part of the plugin contract (:class:`dltk.plugin.BenchmarkSpec` in
``PluginSpec.benchmarks``): any plugin adds its own the same way. A benchmark run trains the
benchmark's task once per seed (each seed a normal run directory under ``OUTPUT/runs/``; a seed
whose run already completed is reused, so an interrupted benchmark resumes), then writes

- ``report.json``: benchmark, metric, direction, mean, std, per_seed, per_task (mean, std),
  published (name -> value), citations, protocol, wall_seconds, runs;
- ``report.md``: the same as tables, ours beside the published numbers with citations;
- ``report.png``: a bar chart of ours (mean +- sd over seeds) and the published numbers.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from dltk.errors import ConfigError
from dltk.io import atomic_path, write_json, write_text
from dltk.plugin import BenchmarkSpec, PluginSpec


def registry() -> dict[str, tuple[PluginSpec, BenchmarkSpec]]:
    """Every benchmark of every healthy plugin; a name declared twice is an error naming both."""
    from dltk.discovery import discover

    found: dict[str, tuple[PluginSpec, BenchmarkSpec]] = {}
    for info in discover().values():
        if not info.healthy or info.spec is None:
            continue
        for bench in info.spec.benchmarks:
            if bench.name in found:
                other = found[bench.name][0].name
                raise ConfigError(f"benchmark {bench.name!r} is declared by plugins {other!r} and "
                                  f"{info.spec.name!r}")
            found[bench.name] = (info.spec, bench)
    return found


def resolve(name: str) -> list[tuple[PluginSpec, BenchmarkSpec]]:
    """Benchmarks called ``name``, or all whose name starts with ``name_`` (a family)."""
    benches = registry()
    if name in benches:
        return [benches[name]]
    family = [benches[k] for k in sorted(benches) if k.startswith(name + "_")]
    # a member of a combined benchmark of the family runs inside it, not a second time on its own
    inside = {m for _, b in family for m in b.combine}
    family = [(p, b) for p, b in family if b.name not in inside]
    if family:
        return family
    choices = ", ".join(sorted(benches)) or "none (no plugin declares benchmarks)"
    raise ConfigError(f"unknown benchmark {name!r}; available: {choices}")


def print_list() -> None:
    benches = registry()
    if not benches:
        print("no benchmarks: install a plugin that declares some (e.g. pip install 'dltk[chem]')")
    for name in sorted(benches):
        plugin, bench = benches[name]
        refs = ", ".join(f"{r.name} {r.values['mean']:.3g}" for r in bench.references if "mean" in r.values)
        arrow = "higher" if bench.higher_is_better else "lower"
        print(f"{name} ({plugin.name}): {bench.summary}")
        print(f"    metric test/{bench.metric} ({arrow} is better); published: {refs or '-'}")


def _mean_sd(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else 0.0)


def run(name: str, seeds: int | None = None, output: str | None = None,
        extra: list[str] | None = None) -> list[Path]:
    """Run one benchmark (or a family of them); returns the report directories."""
    targets = resolve(name)
    reports = []
    for plugin, bench in targets:
        out = Path(output) if output else Path("benchmark-results") / bench.name
        if output and len(targets) > 1:
            out = Path(output) / bench.name
        reports.append(run_one(plugin, bench, seeds or bench.seeds, out, extra or []))
    return reports


def _run_seed(plugin: PluginSpec, bench: BenchmarkSpec, seed: int, n_seeds: int, out: Path, extra: list[str],
              combined_from: list[str] | None) -> dict[str, Any]:
    """Train (or combine) one seed into ``out/runs/seed<k>``, unless a completed run is there."""
    from dltk.run import Run

    run_dir = out / "runs" / f"seed{seed}"
    if _reusable(run_dir, combined_from):
        print(f"dltk benchmark: {bench.name} seed {seed}: reusing completed run {run_dir}")
    else:
        if run_dir.exists():  # an interrupted seed: start it again in a fresh directory
            import shutil

            shutil.rmtree(run_dir)
        print(f"dltk benchmark: {bench.name} seed {seed + 1}/{n_seeds} -> {run_dir}", flush=True)
        if combined_from is not None:
            from dltk import combine

            combine.combine(combined_from, str(run_dir))
        else:
            from dltk.train import train

            args = ["--plugin", plugin.name, "--task", bench.task, *bench.overrides, "--seed", str(seed),
                    "--run-dir", str(run_dir)]
            if bench.seed_split:
                args += ["--data.split_seed", str(seed)]
            train(args + list(extra))
    metrics = Run.open(run_dir).metrics
    if f"test/{bench.metric}" not in metrics:
        raise ConfigError(f"{run_dir}/metrics.json has no 'test/{bench.metric}'; benchmark metric mismatch")
    return {"seed": seed, "run_dir": str(run_dir), "metrics": metrics, "seconds": _run_seconds(run_dir / "run.json")}


def _spread(runs: list[dict[str, Any]], key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per task (``test/<metric>/<task>``) and per same-run baseline (``test/baseline_*``): mean, sd."""
    task_names = sorted({k.split("/", 2)[2] for r in runs for k in r["metrics"] if k.startswith(key + "/")})
    per_task = {}
    for task in task_names:
        m, s = _mean_sd([float(r["metrics"].get(f"{key}/{task}", math.nan)) for r in runs])
        per_task[task] = {"mean": m, "std": s}
    baseline_keys = sorted({k for r in runs for k in r["metrics"] if k.startswith("test/baseline")
                            and isinstance(r["metrics"][k], int | float)})
    baselines = {}
    for k in baseline_keys:
        m, s = _mean_sd([float(r["metrics"].get(k, math.nan)) for r in runs])
        baselines[k.removeprefix("test/")] = {"mean": m, "std": s}
    return per_task, baselines


def _report(plugin: PluginSpec, bench: BenchmarkSpec, runs: list[dict[str, Any]], members: dict[str, Any],
            pooled: dict[str, Any] | None, extra: list[str], wall: float) -> dict[str, Any]:
    key = f"test/{bench.metric}"
    per_seed = [float(r["metrics"][key]) for r in runs]
    mean, sd = _mean_sd(per_seed)
    per_task, baselines = _spread(runs, key)
    return {
        "benchmark": bench.name, "plugin": plugin.name, "task": bench.task, "metric": bench.metric,
        "higher_is_better": bench.higher_is_better, "mean": mean, "std": sd, "n_seeds": len(runs),
        "per_seed": per_seed, "per_task": per_task,
        "published": {r.name: r.values["mean"] for r in bench.references if "mean" in r.values},
        "published_per_task": {r.name: {k: v for k, v in r.values.items() if k != "mean"}
                               for r in bench.references if len(r.values) > 1},
        "citations": {r.name: r.citation for r in bench.references},
        "protocol": bench.protocol,
        "overrides": list(bench.overrides) + list(extra),
        "same_run_baselines": baselines,
        # training + testing time of every seed (a seed reused from an earlier, interrupted
        # invocation counts with the time it took then)
        "wall_seconds": round(wall, 1),
        "members": {name: {"mean": m["mean"], "std": m["std"], "per_seed": m["per_seed"],
                           "wall_seconds": m["wall_seconds"], "report": m["report_md"]}
                    for name, m in members.items()},
        "validation": _combined_validation(runs, list(members)) if members else {},
        "pooled": pooled,
        "per_seed_seconds": [r["seconds"] for r in runs],
        "runs": [r["run_dir"] for r in runs],
    }


def run_one(plugin: PluginSpec, bench: BenchmarkSpec, n_seeds: int, out: Path, extra: list[str]) -> Path:
    """Run ``bench`` over ``n_seeds`` seeds into ``out`` (resumable); write the report there."""
    if n_seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {n_seeds}")
    start = time.time()
    members = _run_members(plugin, bench, n_seeds, out, extra)
    runs = [_run_seed(plugin, bench, seed, n_seeds, out, extra,
                      [m["runs"][seed] for m in members.values()] if members else None) for seed in range(n_seeds)]
    # seeds that share one test split can also be pooled into one ensemble of every member run
    same_split = bool(members) and not any(registry()[name][1].seed_split for name in members)
    pooled = _pooled(members, n_seeds, out, f"test/{bench.metric}") if same_split and n_seeds > 1 else None
    wall = max(time.time() - start,
               sum(r["seconds"] for r in runs) + sum(m["wall_seconds"] for m in members.values())
               + (pooled or {}).get("seconds", 0.0),
               _previous_wall(out / "report.json", bench.name, n_seeds))
    report = _report(plugin, bench, runs, members, pooled, extra, wall)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    write_text(out / "report.md", _markdown(report, (Path(runs[0]["run_dir"]) / "config.yaml").read_text()))
    _chart(report, out / "report.png")
    print(_summary_line(report))
    print(f"dltk benchmark: report written to {out}/report.md, report.json, report.png")
    return out


def _run_members(plugin: PluginSpec, bench: BenchmarkSpec, n_seeds: int, out: Path,
                 extra: list[str]) -> dict[str, dict[str, Any]]:
    """Run the benchmarks that ``bench`` combines (each into ``out/members/<name>``); their reports."""
    if not bench.combine:
        return {}
    benches = registry()
    reports = {}
    for name in bench.combine:
        if name not in benches or benches[name][0].name != plugin.name or benches[name][1].combine:
            raise ConfigError(f"benchmark {bench.name!r} combines {name!r}, which is not a plain benchmark of "
                              f"plugin {plugin.name!r}")
        member_out = out / "members" / name
        print(f"dltk benchmark: {bench.name} member {name} -> {member_out}", flush=True)
        run_one(plugin, benches[name][1], n_seeds, member_out, extra)
        reports[name] = {**json.loads((member_out / "report.json").read_text()),
                         "report_md": str(member_out / "report.md")}
    return reports


def _reusable(run_dir: Path, combined_from: list[str] | None) -> bool:
    """A completed run from an earlier invocation; for a combined run, only if it combined exactly
    ``combined_from`` and was made after each of them finished (a member retrained since, or a
    different number of seeds, makes it stale)."""
    status_file = run_dir / "run.json"
    if not (status_file.is_file() and json.loads(status_file.read_text()).get("status") == "completed"):
        return False
    if combined_from is None:
        return True
    from dltk.run import Run

    handle = Run.open(run_dir)
    if handle.kind != "combined" or handle.member_dirs != [Path(r).resolve() for r in combined_from]:  # type: ignore[attr-defined]
        return False
    made = status_file.stat().st_mtime
    return all((Path(r) / "run.json").stat().st_mtime <= made for r in combined_from)


def _pooled(members: dict[str, dict[str, Any]], n_seeds: int, out: Path, key: str) -> dict[str, Any]:
    """One ensemble of every member run of every seed (``out/runs/all``), beside the per-seed
    averages: the "one ensemble run" figure, from the same trained models."""
    from dltk import combine
    from dltk.run import Run

    run_dir = out / "runs" / "all"
    status_file = run_dir / "run.json"
    runs = [m["runs"][seed] for m in members.values() for seed in range(n_seeds)]
    if not _reusable(run_dir, runs):
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        print(f"dltk benchmark: one ensemble of all {len(runs)} member runs -> {run_dir}", flush=True)
        combine.combine(runs, str(run_dir))
    metrics = Run.open(run_dir).metrics
    record = Run.open(run_dir).record  # type: ignore[attr-defined]
    return {"value": float(metrics[key]), "n_members": len(record["members"]), "run": str(run_dir),
            "validation": (record.get("val") or {}).get(record["primary_metric"]),
            "seconds": _run_seconds(status_file)}


def _combined_validation(runs: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, float]]:
    """Validation primary metric (mean, sd over seeds) of each member and of their average, from
    each seed's ``combine.json``: the evidence, on validation data only, for combining."""
    from dltk.run import Run

    columns: dict[str, list[float]] = {name: [] for name in [*names, "average"]}
    for r in runs:
        record = Run.open(r["run_dir"]).record  # type: ignore[attr-defined]
        primary = record["primary_metric"]
        if not record.get("val"):
            return {}
        for name, values in zip(names, record["member_val"], strict=True):
            columns[name].append(float(values.get(primary, math.nan)))
        columns["average"].append(float(record["val"].get(primary, math.nan)))
    return {name: dict(zip(("mean", "std"), _mean_sd(vals), strict=True)) for name, vals in columns.items()}


def _previous_wall(report: Path, name: str, n_seeds: int) -> float:
    """Wall time of an earlier report of the same benchmark in the same folder (its seeds are
    being reused now), so that re-rendering a report never understates what the runs cost."""
    try:
        old = json.loads(report.read_text())
    except (OSError, ValueError):
        return 0.0
    if old.get("benchmark") != name or old.get("n_seeds") != n_seeds:
        return 0.0
    return float(old.get("wall_seconds") or 0.0)


def _run_seconds(status_file: Path) -> float:
    """How long a completed run took, from its run.json start and finish times."""
    from datetime import datetime

    try:
        status = json.loads(status_file.read_text())
        started = datetime.fromisoformat(status["started"])
        finished = datetime.fromisoformat(status["finished"])
    except (OSError, KeyError, ValueError):
        return 0.0
    return max(0.0, (finished - started).total_seconds())


def _fmt(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _summary_line(r: dict[str, Any]) -> str:
    pub = ", ".join(f"{k} {v:.3f}" for k, v in r["published"].items())
    return (f"{r['benchmark']}: test {r['metric']} {_fmt(r['mean'])} +- {_fmt(r['std'])} over "
            f"{r['n_seeds']} seeds (published: {pub or '-'}), {r['wall_seconds']:.0f} s")


def _markdown(r: dict[str, Any], config_text: str) -> str:
    arrow = "higher" if r["higher_is_better"] else "lower"
    lines = [f"# Benchmark `{r['benchmark']}`", "",
             f"Plugin `{r['plugin']}`, task `{r['task']}`; metric test `{r['metric']}` ({arrow} is better); "
             f"{r['n_seeds']} seeds; wall time {r['wall_seconds']:.0f} s.", ""]
    if r["protocol"]:
        lines += ["## Protocol", "", r["protocol"], ""]
    lines += ["## Overall", "", "| method | " + r["metric"] + " | source |", "|---|---|---|",
              f"| **dltk (this run)** | **{_fmt(r['mean'])} ± {_fmt(r['std'])}** | seeds: "
              + ", ".join(_fmt(v) for v in r["per_seed"]) + " |"]
    for name, value in r["published"].items():
        lines.append(f"| {name} | {value:.3f} | {r['citations'].get(name, '')} |")
    for name, value in r.get("same_run_baselines", {}).items():
        lines.append(f"| {name} | {_fmt(value['mean'])} ± {_fmt(value['std'])} | computed in the same runs, "
                     "on the same test split |")
    if r.get("pooled"):
        p = r["pooled"]
        lines.insert(lines.index("## Overall") + 5,
                     f"| dltk, one ensemble of all {p['n_members']} member runs | {_fmt(p['value'])} | "
                     f"`{p['run']}`; validation {_fmt(p['validation'])} |")
    if r.get("members"):
        val = r.get("validation") or {}
        lines += ["", "## Members (averaged with equal weights, seed by seed)", "",
                  f"| run | validation {r['metric']} | test {r['metric']} | per seed |", "|---|---|---|---|"]
        for name, m in r["members"].items():
            v = val.get(name, {})
            lines.append(f"| `{name}` | {_fmt(v.get('mean'))} ± {_fmt(v.get('std'))} | {_fmt(m['mean'])} ± "
                         f"{_fmt(m['std'])} | " + ", ".join(_fmt(x) for x in m["per_seed"]) + " |")
        v = val.get("average", {})
        lines.append(f"| **average** | {_fmt(v.get('mean'))} ± {_fmt(v.get('std'))} | {_fmt(r['mean'])} ± "
                     f"{_fmt(r['std'])} | " + ", ".join(_fmt(x) for x in r["per_seed"]) + " |")
        lines += ["", "Each member's own report: " + ", ".join(f"`{m['report']}`" for m in r["members"].values())]
    if r["per_task"]:
        refs = list(r["published_per_task"])
        lines += ["", "## Per task", "", "| task | dltk mean ± sd | " + " | ".join(refs) + " |",
                  "|---|---|" + "---|" * len(refs)]
        for task, v in r["per_task"].items():
            cells = [_fmt(r["published_per_task"][ref].get(task, math.nan)) for ref in refs]
            lines.append(f"| {task} | {_fmt(v['mean'])} ± {_fmt(v['std'])} | " + " | ".join(cells) + " |")
    lines += ["", "## Runs", ""] + [f"- `{p}`" for p in r["runs"]]
    lines += ["", "## Configuration (seed 0, fully resolved)", "", "```yaml", config_text.strip(), "```", ""]
    return "\n".join(lines)


def _chart(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(r["per_task"])
    fig_w = 4 + 0.55 * max(len(tasks), 1)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(fig_w + 4, 3.8),
                                   gridspec_kw={"width_ratios": [1.2, max(len(tasks), 1) * 0.35 + 1]})
    same = {k: v for k, v in r.get("same_run_baselines", {}).items()
            if k.split("/", 1)[-1] == r["metric"].split("/", 1)[-1] or k.endswith(r["metric"])}
    members = r.get("members") or {}
    pooled = [r["pooled"]] if r.get("pooled") else []
    names = (["dltk"] + [f"dltk: all {p['n_members']} runs" for p in pooled] + [f"dltk: {m}" for m in members]
             + list(r["published"]) + list(same))
    values = ([r["mean"]] + [p["value"] for p in pooled] + [m["mean"] for m in members.values()]
              + list(r["published"].values()) + [v["mean"] for v in same.values()])
    errors = ([r["std"]] + [0.0] * len(pooled) + [m["std"] for m in members.values()]
              + [0.0] * len(r["published"]) + [v["std"] for v in same.values()])
    colors = (["C0"] + ["#3182bd"] * len(pooled) + ["#9ecae1"] * len(members) + ["0.65"] * len(r["published"])
              + ["C1"] * len(same))
    ax0.bar(range(len(names)), values, yerr=errors, color=colors, capsize=4)
    ax0.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    finite = [v for v in values if not math.isnan(v)]
    if finite and r["higher_is_better"]:
        ax0.set_ylim(max(0.0, min(finite) - 0.1), min(1.0, max(finite) + 0.05) if max(finite) <= 1 else None)
    ax0.set_ylabel(f"test {r['metric']}")
    ax0.set_title(f"{r['benchmark']}: overall", fontsize=9)
    if tasks:
        means = [r["per_task"][t]["mean"] for t in tasks]
        sds = [r["per_task"][t]["std"] for t in tasks]
        ax1.bar(range(len(tasks)), means, yerr=sds, color="C0", capsize=3, label="dltk (mean ± sd)")
        for i, (ref, vals) in enumerate(r["published_per_task"].items()):
            xs = [j for j, t in enumerate(tasks) if t in vals]
            ax1.scatter(xs, [vals[tasks[j]] for j in xs], marker="_", s=200, color=f"C{i + 1}", zorder=3,
                        label=ref)
        ax1.set_xticks(range(len(tasks)), tasks, rotation=60, ha="right", fontsize=7)
        finite = [m for m in means if not math.isnan(m)]
        if finite and r["higher_is_better"] and max(finite) <= 1:
            ax1.set_ylim(max(0.0, min(finite) - 0.15), 1.0)
        ax1.set_title("per task", fontsize=9)
        ax1.legend(fontsize=7, loc="lower right")
    else:
        ax1.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
