"""mkdocs hooks for the dltk site (registered in mkdocs.yml).

- ``on_config``: drop nav entries whose page does not exist yet (plugin pages are written by their
  authors; a missing one must not break ``mkdocs build --strict``).
- ``on_files``: generate ``cli.md`` from the argparse parser of ``dltk.cli`` (``dltk --help``, every
  subcommand's help, nested ones included) and ``dltk.runner.TRAIN_HELP``: never hand-copied.
- ``on_page_markdown``: replace ``<!-- readme: SECTION -->`` with that ``## SECTION`` of the
  repository's README.md (links into ``docs/`` made relative to the site, other repository paths
  shown as code), so the install commands on the site are the README's, verbatim.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


# ------------------------------------------------------------------------------------------------
# nav: only pages that exist
# ------------------------------------------------------------------------------------------------
def _prune(items: list[Any], docs_dir: Path) -> list[Any]:
    out = []
    for item in items:
        if isinstance(item, str):
            if item.startswith(("http://", "https://")) or (docs_dir / item).is_file():
                out.append(item)
        elif isinstance(item, dict):
            kept = {}
            for title, value in item.items():
                if isinstance(value, list):
                    sub = _prune(value, docs_dir)
                    if sub:
                        kept[title] = sub
                elif value.startswith(("http://", "https://")) or (docs_dir / value).is_file() \
                        or value == "cli.md":
                    kept[title] = value
            if kept:
                out.append(kept)
    return out


def on_config(config: Any) -> Any:
    docs_dir = Path(config["docs_dir"])
    if config.get("nav"):
        config["nav"] = _prune(config["nav"], docs_dir)
    return config


# ------------------------------------------------------------------------------------------------
# cli.md from the parser
# ------------------------------------------------------------------------------------------------
def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(parser: argparse.ArgumentParser) -> str:
    with contextlib.redirect_stdout(io.StringIO()):
        text = parser.format_help()
    return text.rstrip()


def cli_markdown() -> str:
    import os

    os.environ.setdefault("COLUMNS", "100")
    from dltk.cli import _parser
    from dltk.train import TRAIN_HELP

    parser = _parser()
    intro = ("Generated from the `dltk` argument parser when the site is built (`docs/_hooks/dltk_docs.py`), "
             "so it always matches the installed version. `dltk train` options beyond these come from the "
             "task preset: `dltk train --plugin NAME --help` lists every one of them.")
    parts = ["# Command line reference", "", intro, "",
             "## dltk", "", "```text", _help(parser), "```", ""]
    for name, sub in _subparsers(parser).items():
        parts += [f"## dltk {name}", ""]
        if name == "train":
            parts += ["```text", TRAIN_HELP.rstrip(), "```", ""]
            continue
        parts += ["```text", _help(sub), "```", ""]
        for child, subsub in _subparsers(sub).items():
            parts += [f"### dltk {name} {child}", "", "```text", _help(subsub), "```", ""]
    return "\n".join(parts)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, "cli.md", content=cli_markdown()))
    return files


# ------------------------------------------------------------------------------------------------
# README sections
# ------------------------------------------------------------------------------------------------
def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise ValueError(f"README.md has no section '## {title}'")
    body = match.group(1).strip()

    def relink(m: re.Match[str]) -> str:
        label, target = m.group(1), m.group(2)
        if target.startswith(("http://", "https://", "#")):
            return m.group(0)
        if target.startswith("docs/"):
            return f"[{label}]({target[len('docs/'):]})"
        return f"{label} (`{target}` in the repository)"

    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", relink, body)


_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s#]+)(#[^)]*)?\)")


def fix_links(markdown: str, page_path: str, docs_dir: Path) -> str:
    """Links to a plugin page not written yet become plain text ("not written yet"); links that
    leave ``docs/`` for an existing repository file (``../benchmarks/README.md``) name that file in
    code. Anything else stays a link, so a truly broken link still fails the strict build."""
    here = (docs_dir / page_path).parent

    def fix(m: re.Match[str]) -> str:
        label, target = m.group(1), m.group(2)
        if re.match(r"^[a-z]+:", target) or not target.endswith(".md"):
            return m.group(0)
        resolved = (here / target).resolve()
        if resolved.is_file() and docs_dir.resolve() in resolved.parents:
            return m.group(0)
        if docs_dir.resolve() in resolved.parents and resolved.name in PLUGIN_PAGES:
            return f"{label} (page not written yet)"
        if REPO in resolved.parents and resolved.is_file():
            return f"{label} (`{resolved.relative_to(REPO).as_posix()}` in the repository)"
        return m.group(0)

    return _LINK.sub(fix, markdown)


PLUGIN_PAGES = {"chem.md", "genomics.md", "imaging.md", "video.md", "benchmarks.md"}
"""Pages written by the plugins' authors; the site builds whether or not they exist yet."""


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    markdown = re.sub(r"<!--\s*readme:\s*(.+?)\s*-->", lambda m: readme_section(m.group(1)), markdown)
    return fix_links(markdown, page.file.src_uri, Path(config["docs_dir"]))
