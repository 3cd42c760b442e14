"""The book's table of contents, read from _toc.yml: the one place chapter order lives."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_entries(root=ROOT):
    """(page stem relative to the root, toc title or None) for every page, in reading order."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf-8"))
    entries = [(toc["root"], None)]

    def walk(items):
        for item in items:
            entries.append((item["file"], item.get("title")))
            walk(item.get("sections", []))

    for part in toc.get("parts", []):
        walk(part["chapters"])
    walk(toc.get("chapters", []))
    return entries


def execution_cache(root=ROOT):
    """The build's jupyter-cache folder: executed notebooks, keyed on their code cells."""
    return Path(root) / "_build" / ".jupyter_cache"


def toc_notebooks(root=ROOT):
    """Paths of the notebooks in the toc, in reading order."""
    return [Path(root) / f"{stem}.ipynb" for stem, _ in toc_entries(root)
            if (Path(root) / f"{stem}.ipynb").exists()]
