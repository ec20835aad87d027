"""Bad command lines and run directories (core): unknown plugin, task or key, wrong types,
broken config files, foreign class paths, runs that cannot be resumed or read."""

from __future__ import annotations

import shutil

from catalogue import TRAIN_TAIL, Case, Context


def _run_copy(ctx: Context, plugin: str = "chem"):
    run = ctx.tmp / "copied-run"
    shutil.copytree(ctx.runs(plugin), run)
    return run


def _foreign_checkpoint(ctx: Context) -> list[str]:
    """A chem run whose checkpoint was replaced by one written by a genomics model."""
    run = _run_copy(ctx, "chem")
    other = ctx.runs("genomics")
    for name in ("best.ckpt", "last.ckpt"):
        shutil.copyfile(other / "checkpoints" / "best.ckpt", run / "checkpoints" / name)
    return ["test", "--run", str(run)]


def _truncated_checkpoint(ctx: Context) -> list[str]:
    run = _run_copy(ctx)
    data = (run / "checkpoints" / "best.ckpt").read_bytes()
    (run / "checkpoints" / "best.ckpt").write_bytes(data[: len(data) // 3])
    return ["test", "--run", str(run)]


def _no_config(ctx: Context) -> list[str]:
    run = _run_copy(ctx)
    (run / "config.yaml").unlink()
    return ["test", "--run", str(run)]


def _resume_completed(ctx: Context) -> list[str]:
    return ["train", "--resume", str(_run_copy(ctx))]


CASES = [
    Case("unknown-plugin", lambda ctx: ["train", "--plugin", "chemistry", *TRAIN_TAIL],
         ("unknown plugin 'chemistry'", "chem")),
    Case("unknown-task", lambda ctx: ["train", "--plugin", "chem", "--task", "tox22", *TRAIN_TAIL],
         ("no preset (--task) 'tox22'", "tox21_challenge")),
    Case("unknown-config-key", lambda ctx: ["train", "--plugin", "chem", "--model.hiden_dim", "64", *TRAIN_TAIL],
         ("model.hiden_dim", "hidden_dim"), plugin="chem"),
    Case("wrong-type-value", lambda ctx: ["train", "--plugin", "chem", "--data.batch_size", "many", *TRAIN_TAIL],
         ("data.batch_size", "many"), plugin="chem"),
    Case("missing-config-file", lambda ctx: ["train", "--plugin", "chem", "--config", "nope.yaml", *TRAIN_TAIL],
         ("nope.yaml",), plugin="chem"),
    Case("malformed-config-yaml",
         lambda ctx: ["train", "--plugin", "chem", "--config", str(ctx.write("bad.yaml", "model: [1, 2\n")),
                      *TRAIN_TAIL],
         ("bad.yaml",), plugin="chem"),
    Case("foreign-class-path", lambda ctx: ["train", "--plugin", "chem", "--model.class_path", "subprocess.Popen",
                                             *TRAIN_TAIL],
         ("subprocess.Popen", "dltk_chem"), plugin="chem"),
    Case("checkpoint-from-another-plugin", _foreign_checkpoint,
         ("dltk_genomics", "dltk_chem", "another run or plugin"), plugin="genomics"),
    Case("truncated-checkpoint", _truncated_checkpoint, ("best.ckpt", "refused to load checkpoint"), plugin="chem"),
    Case("run-without-config", _no_config, ("copied-run", "config.yaml"), plugin="chem"),
    Case("resume-completed-run", _resume_completed, ("copied-run", "already completed"), plugin="chem"),
    Case("unknown-benchmark", lambda ctx: ["benchmark", "tox22_challenge"], ("tox22_challenge", "tox21_challenge")),
]
