"""The ``dltk`` command line. Start-up stays light: torch and plugins load only when a command
needs them (``dltk --help`` and ``dltk plugins`` never import torch)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from dltk import __version__

DESCRIPTION = "dltk: deep learning for life-science research (chem, genomics, imaging, video plugins)."


def _run_verbs(sub: Any) -> None:
    """test, predict, explain, export: the verbs that open a run (``--run DIR``)."""
    p = sub.add_parser("test", help="re-evaluate a run's best checkpoint on its test split")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--checkpoint", choices=["best", "last"],
                   help="default: best (a combined run: the checkpoint it was combined with)")
    p = sub.add_parser("predict", help="predict new inputs with a run's model", add_help=False,
                       epilog="`dltk predict --run DIR --help` also lists that run's plugin options "
                              "(e.g. --level 1 --tile 224 for a slide).")
    p.add_argument("-h", "--help", action="store_true", help="show this help (with --run: the plugin's options)")
    p.add_argument("--run", help="run directory (required)")
    p.add_argument("--input", help="input file or folder (e.g. CSV or .smi of SMILES) (required)")
    p.add_argument("--output", help="output CSV (or folder, for plugins that write images) (required)")
    p.add_argument("--checkpoint", choices=["best", "last"],
                   help="default: best (a combined run: the checkpoint it was combined with)")
    p = sub.add_parser("explain", help="explain a run's predictions (plugin options follow)", add_help=False,
                       epilog="`dltk explain --run DIR --help` also lists that run's plugin options.")
    p.add_argument("-h", "--help", action="store_true", help="show this help (with --run: the plugin's options)")
    p.add_argument("--run", help="run directory (required)")
    p.add_argument("--checkpoint", choices=["best", "last"])
    p = sub.add_parser("export", help="export a run's model to ONNX or TorchScript, with a JSON description",
                       description="Write a self-contained model file and NAME.json describing inputs (names, "
                                   "dtypes, shapes with a dynamic batch), outputs, preprocessing (the run's "
                                   "data_info and data settings) and task/label/class names. The exported "
                                   "outputs are checked against the Lightning model on a batch of the run's data.")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    p.add_argument("--output", help="model file (default RUN/export/model.onnx or model.pt)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])


def _serve(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a run's predictions over HTTP (POST /predict, /info, /health)",
                       description="Put a run (plain, --ensemble or combined) behind an HTTP API on FastAPI + "
                                   "uvicorn; see docs/serving.md. Needs the serve extra: pip install 'dltk[serve]'.")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="server processes, each with the model loaded (default 1)")
    p.add_argument("--max-batch", type=int, help="inputs predicted together at most (default 1024)")
    p.add_argument("--batch-timeout", type=float, help="ms to wait for more requests to batch (default 5)")
    p.add_argument("--threads", type=int, help="torch threads per worker process (default 1: small batches on a "
                                               "shared CPU answer faster; use --workers for more cores)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (or set DLTK_SERVE_TOKEN)")
    p.add_argument("--max-rows", type=int, help="inputs per request at most; more: 413 (default 4096)")
    p.add_argument("--max-body-mb", type=float, help="request body size limit in MiB; more: 413 (default 32)")
    p.add_argument("--checkpoint", choices=["best", "last"],
                   help="default: best (a combined run: the checkpoint it was combined with)")


def _benchmark_and_combine(sub: Any) -> None:
    p = sub.add_parser("benchmark", help="reproduce a published benchmark over seeds; report vs published")
    p.add_argument("name", nargs="?", help="benchmark name (or a family prefix, e.g. tox21_moleculenet)")
    p.add_argument("--list", action="store_true", help="list the available benchmarks")
    p.add_argument("--seeds", type=int, help="number of seeds (default: the benchmark's, usually 3)")
    p.add_argument("--output", help="report directory (default benchmark-results/NAME)")
    p.add_argument("--logger", choices=["mlflow"], help="track every seed's run in MLflow")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default ./mlruns, a local file store)")
    p = sub.add_parser("combine", help="average finished runs of different models on the same test split",
                       description="Test each run (its best checkpoint; every member of an --ensemble run), "
                                   "check that all predict the same targets on the same test split, and write a "
                                   "new run directory with their equal-weight average: predictions with the "
                                   "members' spread, metrics, plots and combine.json (each member's test and "
                                   "validation metrics beside the average's). `dltk test` and `dltk predict` "
                                   "accept the result like any run.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (two or more, same plugin)")
    p.add_argument("--output", help="new run directory (default runs/<plugin>-combined-<timestamp>)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])


def _plugin_verbs(sub: Any) -> None:
    p = sub.add_parser("plugins", help="list installed plugins, their presets and health")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("plugin", help="write a new plugin package, or check a plugin against the contract")
    plugin_sub = p.add_subparsers(dest="plugin_command", metavar="ACTION", required=True)
    q = plugin_sub.add_parser(
        "new", help="scaffold an installable plugin package in a new folder",
        description="Scaffold an installable plugin: pyproject.toml with its entry point, a light spec.py, a "
                    "datamodule that generates seeded data, a model with example(), a preset, a README and "
                    "tests. Then: pip install -e ./NAME && dltk train --plugin NAME")
    q.add_argument("name", help="plugin name, lower_snake_case (package dltk_NAME)")
    q.add_argument("--dir", help="folder to create (default ./NAME)")
    q.add_argument("--summary", help="one-line description shown by `dltk plugins`")
    q = plugin_sub.add_parser("check", help="run the plugin contract checks on an installed plugin",
                              description="Check a plugin against the contract: its spec loads without torch or its "
                                          "extras; datamodules/models subclass the core bases; each model's example() "
                                          "does forward + backward; each preset passes --print-config and trains a "
                                          "few steps on the CPU. Exit 1 if a check fails.")
    q.add_argument("name", help="installed plugin name (see `dltk plugins`)")
    q.add_argument("--no-train", action="store_true", help="presets: --print-config only, no training steps")
    q.add_argument("--only", metavar="PREFIX", help="run only checks whose name starts with PREFIX "
                                                    "(spec, classes, model:NAME, preset:TASK)")


def build_parser() -> argparse.ArgumentParser:
    """The `dltk` argument parser (the docs generate the CLI reference from it)."""
    parser = argparse.ArgumentParser(prog="dltk", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"dltk {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("train", help="train a plugin's preset; writes a run directory", add_help=False)
    _run_verbs(sub)
    _serve(sub)
    _benchmark_and_combine(sub)
    from dltk import tune

    tune.add_arguments(sub.add_parser("tune", help="search a preset's hyper-parameters with Optuna (resumable, "
                                                   "parallel); best.yaml, trials.csv, plots",
                                      description=tune.DESCRIPTION))
    _plugin_verbs(sub)
    return parser


def _plugins(as_json: bool) -> int:
    from dltk.discovery import discover

    plugins = discover()
    if as_json:
        import json

        listing = {name: {"version": info.version, "status": info.status,
                          "tasks": [t.name for t in info.spec.tasks] if info.spec else []}
                   for name, info in plugins.items()}
        for name, info in plugins.items():  # optional capabilities, only for plugins that declare some
            if info.spec is not None and info.spec.optional:
                listing[name]["optional"] = {r.module: r.is_installed() for r in info.spec.optional}
        print(json.dumps(listing, indent=2))
        return 0
    if not plugins:
        print("no dltk plugins installed (pip install 'dltk[chem]' for the chem plugin)")
        return 0
    for name, info in plugins.items():
        print(f"{name} {info.version}: {info.status}")
        if info.spec is not None:
            print(f"  {info.spec.summary}")
            for i, task in enumerate(info.spec.tasks):
                default = " (default)" if i == 0 else ""
                print(f"  - {task.name}{default}: {task.summary}")
            for req in info.spec.optional:
                state = "installed" if req.is_installed() else f"not installed: pip install {req.pip_name}"
                print(f"  optional {req.module} ({state}): {req.purpose}")
    return 0


def _plugin_command(ns: argparse.Namespace) -> int:
    if ns.plugin_command == "new":
        from dltk.scaffold import new_plugin

        folder = new_plugin(ns.name, ns.dir, ns.summary)
        print(f"dltk: wrote plugin {ns.name!r} to {folder}/")
        print(f"  next: pip install -e {folder} && dltk plugins && dltk train --plugin {ns.name}"
              f" && (cd {folder} && python -m pytest)")
        return 0
    from dltk.contract import check_plugin

    results = check_plugin(ns.name, train=not ns.no_train, only=ns.only)
    counts = {s: sum(r.status == s for r in results) for s in ("passed", "failed", "skipped")}
    print(f"dltk: plugin {ns.name}: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped")
    return 1 if counts["failed"] else 0


class _StdoutHandler:
    """Writes ``dltk.*`` log records (split sizes, counted skips) to the current ``sys.stdout``, so
    that they are seen and that stderr stays reserved for the one-line error."""

    @staticmethod
    def make() -> object:
        import logging

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                try:
                    print(self.format(record), file=sys.stdout, flush=True)
                except (OSError, ValueError):  # a closed pipe: logging must never crash a run
                    pass

        handler = Handler(logging.INFO)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.dltk_stdout = True  # type: ignore[attr-defined]
        return handler


def _log_to_stdout() -> None:
    import logging

    logger = logging.getLogger("dltk")
    if not any(getattr(h, "dltk_stdout", False) for h in logger.handlers):
        logger.addHandler(_StdoutHandler.make())  # type: ignore[arg-type]
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return action.choices[name]


def _run_verb(parser: argparse.ArgumentParser, command: str, ns: argparse.Namespace, rest: list[str]) -> int:
    """predict / explain: ``--help`` (with the run's plugin options when ``--run`` is given), the
    required options, then the verb with the plugin's own options in ``rest``."""
    from dltk import verbs
    from dltk.errors import ConfigError

    if ns.help:
        print(_subparser(parser, command).format_help())
        if ns.run:
            print(verbs.options_help(ns.run, command))
        return 0
    required = ("run", "input", "output") if command == "predict" else ("run",)
    missing = [f"--{name}" for name in required if not getattr(ns, name)]
    if missing:
        raise ConfigError(f"dltk {command}: missing required option {', '.join(missing)}")
    if command == "predict":
        verbs.predict(ns.run, ns.input, ns.output, ns.checkpoint, options=rest)
    else:
        verbs.explain(ns.run, rest, ns.checkpoint)
    return 0


def _serve_command(ns: argparse.Namespace) -> int:
    from dltk.errors import ConfigError

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"dltk serve needs {exc.name}: pip install 'dltk[serve]'") from None
    from dltk import serve_app

    max_body = int(ns.max_body_mb * 1024 * 1024) if ns.max_body_mb else None
    return serve_app.serve(ns.run, ns.host, ns.port, ns.workers, which=ns.checkpoint, max_batch=ns.max_batch,
                           batch_timeout_ms=ns.batch_timeout, token=ns.token, max_rows=ns.max_rows,
                           max_body=max_body, threads=ns.threads)


def _dispatch(parser: argparse.ArgumentParser, command: str, ns: argparse.Namespace | None, rest: list[str]) -> int:
    if command == "plugins":
        return _plugins(ns.json)
    if command == "plugin":
        return _plugin_command(ns)
    if command == "train":
        from dltk.train import train

        train(rest)
    elif command == "export":
        from dltk import export

        export.export_run(ns.run, ns.format, ns.output, ns.checkpoint)
    elif command == "benchmark":
        from dltk import benchmark

        if ns.list or not ns.name:
            benchmark.print_list()
        else:
            tracking = ["--logger", ns.logger] if ns.logger else []
            tracking += ["--tracking-uri", ns.tracking_uri] if ns.tracking_uri else []
            benchmark.run(ns.name, ns.seeds, ns.output, rest + tracking)
    elif command == "tune":
        from dltk.tune.command import tune

        return tune(ns, rest, ns.argv)
    elif command == "combine":
        from dltk import combine

        combine.combine(ns.runs, ns.output, ns.checkpoint)
    elif command == "serve":
        return _serve_command(ns)
    elif command == "test":
        from dltk import verbs

        verbs.test(ns.run, ns.checkpoint)
    elif command in ("predict", "explain"):
        return _run_verb(parser, command, ns, rest)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input, with a one-line message)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("DLTK_DEBUG"))
    args = [a for a in args if a != "--debug"]
    parser = build_parser()
    ns: argparse.Namespace | None = None
    rest: list[str] = []
    if args and args[0] == "train":
        command, rest = "train", args[1:]
    elif args and args[0] in ("explain", "benchmark", "predict", "tune"):
        ns, rest = parser.parse_known_args(args)
        command, ns.argv = args[0], args[1:]
    else:
        ns = parser.parse_args(args)
        command = ns.command
    if command is None:
        parser.print_help()
        return 0
    from dltk.errors import DltkUserError

    _log_to_stdout()
    try:
        return _dispatch(parser, command, ns, rest)
    except DltkUserError as exc:
        if debug:
            raise
        print(f"dltk: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dltk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
