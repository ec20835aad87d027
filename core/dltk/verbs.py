"""The verbs that work on a finished run -- ``test``, ``predict``, ``explain`` -- as one Python API
over every kind of run (:class:`~dltk.run.Run`, ``EnsembleRun``, ``CombinedRun``).

Each opens the run with :meth:`dltk.run.Run.open`, parses the plugin's declared options
(:mod:`dltk.options`) and hands the work to :mod:`dltk.evaluate`, :mod:`dltk.predict`,
:mod:`dltk.explain` or, for a combined run, :mod:`dltk.combine`. ``dltk.cli`` calls these; so can a
notebook or a pipeline::

    from dltk import verbs
    verbs.predict("runs/chem-tox21_challenge-...", "molecules.smi", "scores.csv")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dltk import combine, evaluate
from dltk import explain as explain_module
from dltk import options as plugin_options
from dltk import predict as predict_module
from dltk.run import Run


def _open(run: str | Path | Run) -> Run:
    from dltk.trainer_cli import quiet_lightning

    quiet_lightning()
    return run if isinstance(run, Run) else Run.open(run)


def test(run: str | Path | Run, which: str | None = None) -> dict[str, float]:
    """Re-evaluate a run on its test split (nothing in the run is changed); returns the metrics."""
    handle = _open(run)
    if handle.kind == "combined":
        return combine.test(handle, which)  # type: ignore[arg-type]
    return evaluate.test(handle, which)


def predict_options(run: Run) -> type | None:
    """The dataclass of plugin options ``dltk predict`` takes for this run (None: none)."""
    if run.kind == "combined":
        return None
    return run.datamodule_class.predict_options


def predict(run: str | Path | Run, input_path: str, output_path: str, which: str | None = None,
            options: list[str] | None = None, **kwargs: Any) -> dict[str, int]:
    """Predict ``input_path`` into ``output_path``; ``options`` are the plugin's declared predict
    options as command-line words (``["--tile", "512"]``)."""
    handle = _open(run)
    parsed = plugin_options.parse(predict_options(handle), list(options or []),
                                  f"dltk predict ({handle.plugin.name}/{handle.preset.name})")
    if handle.kind == "combined":
        return combine.predict(handle, input_path, output_path, which, parsed, **kwargs)  # type: ignore[arg-type]
    return predict_module.predict(handle, input_path, output_path, which, parsed, **kwargs)


def explain(run: str | Path | Run, argv: list[str], which: str | None = None) -> list[Path]:
    """Run the plugin's explainer with its declared options; returns the files it wrote."""
    return explain_module.explain(_open(run), argv, which)


def options_help(run: str | Path | Run, command: str) -> str:
    """The ``--help`` section listing the plugin options of ``command`` (predict or explain)."""
    handle = _open(run)
    title = f"{handle.plugin.name} options ({handle.preset.name})"
    if command == "predict":
        declared = predict_options(handle)
        return plugin_options.help_text(declared, title) or f"{title}: none\n"
    declared = explain_module.explainer(handle)[1]
    return plugin_options.help_text(declared, title) or f"{title}: none\n"
