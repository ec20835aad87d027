"""The ``dltk`` command line. Start-up stays light: torch and plugins load only when a command
needs them (``dltk --help`` and ``dltk plugins`` never import torch)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from dltk import __version__

DESCRIPTION = "dltk: deep learning for life-science research (chem, genomics, imaging, video plugins)."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dltk", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"dltk {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("train", help="train a plugin's task; writes a run directory", add_help=False)
    p = sub.add_parser("test", help="re-evaluate a run's best checkpoint on its test split")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p = sub.add_parser("predict", help="predict new inputs with a run's model")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--input", required=True, help="input file (e.g. CSV or .smi of SMILES)")
    p.add_argument("--output", required=True, help="output CSV (or folder, for plugins that write images)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.epilog = "Plugin-specific options (e.g. --level 1 --tile 224 for a slide) follow the common ones."
    p = sub.add_parser("explain", help="explain a run's predictions (plugin-specific options follow)")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p = sub.add_parser("benchmark", help="reproduce a published benchmark over seeds; report vs published")
    p.add_argument("name", nargs="?", help="benchmark name (or a family prefix, e.g. tox21_moleculenet)")
    p.add_argument("--list", action="store_true", help="list the available benchmarks")
    p.add_argument("--seeds", type=int, help="number of seeds (default: the benchmark's, usually 3)")
    p.add_argument("--output", help="report directory (default benchmark-results/NAME)")
    p = sub.add_parser("plugins", help="list installed plugins, their tasks and health")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _plugins(as_json: bool) -> int:
    from dltk.discovery import discover

    plugins = discover()
    if as_json:
        import json

        print(json.dumps({name: {"version": info.version, "status": info.status,
                                 "tasks": [t.name for t in info.spec.tasks] if info.spec else []}
                          for name, info in plugins.items()}, indent=2))
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
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input, with a one-line message)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("DLTK_DEBUG"))
    args = [a for a in args if a != "--debug"]
    parser = _parser()
    if args and args[0] == "train":
        command, rest = "train", args[1:]
        ns = None
    elif args and args[0] in ("explain", "benchmark", "predict"):
        ns, rest = parser.parse_known_args(args)
        command = args[0]
    else:
        ns = parser.parse_args(args)
        command, rest = ns.command, []
    if command is None:
        parser.print_help()
        return 0
    from dltk.errors import DltkUserError

    try:
        if command == "plugins":
            return _plugins(ns.json)
        if command == "benchmark":
            from dltk import benchmark

            if ns.list or not ns.name:
                benchmark.print_list()
                return 0
            benchmark.run(ns.name, ns.seeds, ns.output, rest)
            return 0
        from dltk import runner

        if command == "train":
            runner.train(rest)
        elif command == "test":
            runner.test(ns.run, ns.checkpoint)
        elif command == "predict":
            runner.predict(ns.run, ns.input, ns.output, ns.checkpoint, options=rest)
        elif command == "explain":
            runner.explain(ns.run, rest, ns.checkpoint)
        return 0
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
