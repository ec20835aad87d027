"""Bad molecule files: user CSVs for training (``--task csv``) and prediction input."""

from __future__ import annotations

from catalogue import TRAIN_TAIL, Case, Context

VALID = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCl", "OCC(O)CO", "CC(C)O", "c1ccncc1", "CCOC(=O)C",
         "NC(=O)N", "CC#N", "C1CCCCC1"]
MANY = [f"C{'C' * (i % 9)}O{'N' * (i // 9)}" for i in range(60)]  # 60 distinct structures


def _csv(name: str, content: str | bytes | None, *extra: str):
    """A ``dltk train --task csv`` case on a file with this content (None: no file at all)."""
    def build(ctx: Context) -> list[str]:
        path = ctx.tmp / name if content is None else ctx.write(name, content)
        return ["train", "--plugin", "chem", "--task", "csv", "--data.path", str(path), *extra, *TRAIN_TAIL]
    return build


def _truncated(ctx: Context) -> list[str]:
    path = ctx.truncated_gzip("mols.csv.gz", "smiles,y\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(MANY * 8)))
    return ["train", "--plugin", "chem", "--task", "csv", "--data.path", str(path), *TRAIN_TAIL]


def _predict(name: str, content: str | bytes):
    def build(ctx: Context) -> list[str]:
        src = ctx.write(name, content)
        return ["predict", "--run", str(ctx.runs("chem")), "--input", str(src), "--output", "scores.csv"]
    return build


def _explain_bad_smiles(ctx: Context) -> list[str]:
    return ["explain", "--run", str(ctx.runs("chem")), "--smiles", "C1CC(", "--output", "explained"]


CASES = [
    Case("csv-missing-file", _csv("absent.csv", None), ("absent.csv", "file not found"), plugin="chem"),
    Case("csv-empty-file", _csv("empty.csv", ""), ("empty.csv", "empty"), plugin="chem"),
    Case("csv-no-smiles-column", _csv("a.csv", "smi,y\nCCO,1\nCCN,0\n"),
         ("a.csv", "row 1", "'smiles'", "available columns", "'smi'"), plugin="chem"),
    Case("csv-named-column-absent", _csv("a.csv", "smiles,y\nCCO,1\n", "--data.smiles_column", "structure"),
         ("a.csv", "'structure'", "available columns"), plugin="chem"),
    Case("csv-no-target-column", _csv("a.csv", "smiles,y\nCCO,1\nCCN,0\n", "--data.target_columns", "y,toxic"),
         ("a.csv", "row 1", "'toxic'", "available columns"), plugin="chem"),
    Case("csv-non-numeric-label", _csv("a.csv", "smiles,y,z\nCCO,1,0.5\nCCN,0,1.5\nCCC,yes,2\nCCCC,1,3\n"),
         ("a.csv", "row 4", "field 'y'", "'yes'", "not a number"), plugin="chem"),
    Case("csv-infinite-label", _csv("a.csv", "smiles,y\nCCO,1.5\nCCN,inf\nCCC,2\n"),
         ("a.csv", "row 3", "field 'y'", "not finite"), plugin="chem"),
    Case("csv-out-of-range-class-label",
         _csv("a.csv", "smiles,y\n" + "".join(f"{s},{i % 3}\n" for i, s in enumerate(VALID)),
              "--data.task_type", "classification"),
         ("a.csv", "field 'y'", "0 or 1", "got 2"), plugin="chem"),
    Case("csv-all-smiles-invalid",
         _csv("a.csv", "smiles,y\n" + "".join(f"not_a_smiles_{i},{i % 2}\n" for i in range(20))),
         ("a.csv", "no valid SMILES"), plugin="chem"),
    Case("csv-blank-smiles", _csv("a.csv", "smiles,y\nCCO,1\n ,0\nCCC,1\n"),
         ("a.csv", "row 3", "'smiles'", "blank SMILES"), plugin="chem"),
    Case("csv-ragged-row", _csv("a.csv", "smiles,y\nCCO,1\nCCN,0,7\n"),
         ("a.csv", "row 3", "expected 2 fields, got 3"), plugin="chem"),
    Case("csv-all-missing-task", _csv("a.csv", "smiles,y,z\n" + "".join(f"{s},{i % 2},\n" for i, s in enumerate(MANY)),
                                      "--data.target_columns", "y,z"),
         ("a.csv", "field 'z'", "no labels"), plugin="chem"),
    Case("csv-gzip-truncated", _truncated, ("mols.csv.gz", "truncated or corrupt"), plugin="chem"),
    Case("csv-not-utf8", _csv("a.csv", b"smiles,y\nCCO,1\n\xff\xfe\x00bad,0\n"), ("a.csv",), plugin="chem"),
    Case("csv-duplicate-structures-conflicting-labels",
         _csv("dups.csv", "id,smiles,y\n" + "".join(f"m{i},{s},{i % 2}\n" for i, s in enumerate(MANY))
              + f"again,{MANY[0]},1\n", "--data.target_columns", "y", "--data.id_column", "id",
              "--trainer.max_epochs", "1"),
         ("dups.csv", "merged", "1 conflicting label(s) dropped"), plugin="chem", skip=True),
    Case("predict-no-smiles-column", _predict("in.csv", "structure\nCCO\n"), ("in.csv", "'smiles'"), plugin="chem"),
    Case("predict-empty-file", _predict("in.csv", ""), ("in.csv", "empty"), plugin="chem"),
    Case("explain-invalid-smiles", _explain_bad_smiles, ("C1CC(",), plugin="chem"),
]
