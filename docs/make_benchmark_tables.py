"""Regenerate the results tables of docs/benchmarks.md from `dltk benchmark` reports.

The reports (`report.json`, as written by `dltk benchmark NAME --output DIR`) are kept in
docs/results/<name>.json; every number on the page between the `reports` markers comes from them.

    python docs/make_benchmark_tables.py [--add DIR ...]   # --add copies DIR/report.json in first
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAGE = HERE / "benchmarks.md"
START, END = "<!-- reports:start -->", "<!-- reports:end -->"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def section(report: dict) -> str:
    arrow = "higher" if report["higher_is_better"] else "lower"
    seeds = ", ".join(_fmt(v) for v in report["per_seed"])
    lines = [f"### `{report['benchmark']}` ({report['plugin']} / {report['task']})", "",
             f"Metric: test `{report['metric']}` ({arrow} is better); {report['n_seeds']} seeds; "
             f"wall time {report['wall_seconds']:.0f} s on the shared 2-core CPU machine.", "",
             "| method | value | source |", "|---|---|---|",
             f"| **dltk** | **{_fmt(report['mean'])} ± {_fmt(report['std'])}** ({seeds}) | "
             f"`dltk benchmark {report['benchmark']}` |"]
    if report.get("pooled"):
        p = report["pooled"]
        lines.append(f"| dltk, one ensemble of all {p['n_members']} member runs | {_fmt(p['value'])} | the same "
                     f"trained models, averaged at once; validation {_fmt(p['validation'])} |")
    validation = report.get("validation") or {}
    for name, member in (report.get("members") or {}).items():
        seeds_m = ", ".join(_fmt(v) for v in member["per_seed"])
        val = validation.get(name, {}).get("mean")
        lines.append(f"| dltk member `{name}` | {_fmt(member['mean'])} ± {_fmt(member['std'])} ({seeds_m}) | "
                     f"`dltk benchmark {name}`; validation {_fmt(val)} |")
    if "average" in validation:
        lines.append(f"| dltk average, on validation | {_fmt(validation['average']['mean'])} ± "
                     f"{_fmt(validation['average']['std'])} | the shared validation split (members above) |")
    for name, value in report["published"].items():
        citation = report["citations"].get(name, "").replace("|", "/")
        lines.append(f"| {name} | {_fmt(value)} | {citation} |")
    for name, value in report.get("same_run_baselines", {}).items():
        lines.append(f"| {name} | {_fmt(value['mean'])} ± {_fmt(value['std'])} | computed in the same runs on "
                     "the same test split |")
    for ref, values in report.get("published_per_task", {}).items():
        if values:
            cells = ", ".join(f"{task} {_fmt(v)}" for task, v in values.items())
            lines.append(f"| {ref} (per task) | {cells} | {report['citations'].get(ref, '').replace('|', '/')} |")
    if report.get("per_task") and len(report["per_task"]) <= 12:
        ours = ", ".join(f"{task} {_fmt(v['mean'])}" for task, v in report["per_task"].items())
        lines.append(f"| dltk (per task) | {ours} | |")
    lines += ["", f"Protocol: {report['protocol']}", ""]
    return "\n".join(lines)


def render() -> str:
    reports = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    order = {"chem": 0, "genomics": 1, "imaging": 2, "video": 3}
    reports.sort(key=lambda r: (order.get(r["plugin"], 9), r["benchmark"]))
    return "\n".join(section(r) for r in reports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--add", nargs="*", default=[], help="benchmark output folders to copy in")
    args = parser.parse_args()
    for folder in args.add:
        report = json.loads((Path(folder) / "report.json").read_text())
        shutil.copyfile(Path(folder) / "report.json", RESULTS / f"{report['benchmark']}.json")
    text = PAGE.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    PAGE.write_text(f"{head}{START}\n\n{render()}\n{END}{tail}")


if __name__ == "__main__":
    main()
