"""The toy plugin's declaration: light (imports only dltk.plugin), read by ``dltk plugins``."""

from __future__ import annotations

from dltk.plugin import BenchmarkSpec, PluginSpec, Reference, TaskSpec

plugin = PluginSpec(
    name="toy",
    summary="Synthetic multitask data with a linear signal (tests only).",
    package="dltk_toy",
    tasks=(
        TaskSpec("toy", "2 binary tasks, linear signal + noise, 15% missing labels, ROC-AUC",
                 "configs/toy.yaml",
                 (Reference("Bayes", "the noise-free linear rule (made up for the tests)", "auroc",
                            {"mean": 0.95}),),
                 space={"model.hidden_dim": {"type": "int", "low": 4, "high": 64, "log": True},
                        "model.lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
                        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5}}),
        TaskSpec("toy_regression", "2 regression tasks, linear signal + noise, RMSE",
                 "configs/toy_regression.yaml"),
        TaskSpec("toy_multiclass", "one 3-class target (largest linear score), balanced accuracy",
                 "configs/toy_multiclass.yaml"),
    ),
    datamodules={"toy": "dltk_toy.datamodules:ToyDataModule"},
    models={"toy_mlp": "dltk_toy.models:ToyMLP"},
    benchmarks=(
        BenchmarkSpec("toy_bench", "toy task over seeds (tests only)", task="toy",
                      overrides=("--trainer.max_epochs", "3"), metric="auroc",
                      references=(Reference("Bayes", "made up for the tests", "auroc",
                                            {"mean": 0.95, "alpha": 0.96, "beta": 0.94}),),
                      protocol="synthetic data, seeded split", seeds=2, seed_split=True),
        # one test split for every seed (no seed_split), so that the seeds can also be pooled
        BenchmarkSpec("toy_bench_narrow", "toy task, one split for all seeds (tests only)", task="toy",
                      overrides=("--trainer.max_epochs", "3"), metric="auroc", seeds=2),
        BenchmarkSpec("toy_bench_wide", "toy task, a wider network, one split (tests only)", task="toy",
                      overrides=("--trainer.max_epochs", "3", "--model.hidden_dim", "64", "--model.dropout", "0.2"),
                      metric="auroc", seeds=2),
        BenchmarkSpec("toy_combined", "toy_bench_narrow and toy_bench_wide averaged (tests only)", task="toy",
                      metric="auroc", seeds=2, combine=("toy_bench_narrow", "toy_bench_wide"),
                      references=(Reference("Bayes", "made up for the tests", "auroc", {"mean": 0.95}),)),
    ),
)
