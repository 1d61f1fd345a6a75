"""``mimae experiment archive``: an experiment's report with the small files of every run behind it (config,
results, metrics, evaluation JSON; no weights), with paths made relative, into a folder that can be committed or
shared.

The archived run folders are complete for the report: ``mimae report DIR/runs`` redraws the page from them, and
restored into ``ROOT/NAME/SCALE/`` (:func:`restore`, ``mimae experiment restore``) they count as finished runs, so
``mimae experiment run`` adds seeds or rows to them instead of training them again.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from mimae.config import ConfigError
from mimae.run_folder import CONFIG_NAME, EVAL_PATTERN, LOG_NAME, RESULTS_NAME

REPORT_JSON = ("comparison.json", "budget.json")  # a comparison's numbers, or the budget curve's
REPORT_FILES = ("report.md", "report.html")
RUN_FILES = (CONFIG_NAME, RESULTS_NAME, LOG_NAME, EVAL_PATTERN, "analysis_reconstruct/*.json",
             "analysis_mask_mi/*.json", "analysis_rank/*.json")


def archive(folder: str | Path, out: str | Path) -> list[Path]:
    """Copy the report of the experiment folder ``folder`` (``ROOT/NAME/SCALE``) and its runs' small files into
    ``out`` (runs under ``out/runs/<run name>``); absolute paths of the runs and of the working directory become
    relative. The archived run folders."""
    folder, out = Path(folder), Path(out)
    data = next((folder / name for name in REPORT_JSON if (folder / name).is_file()), None)
    if data is None:
        raise ConfigError(f"{folder} has no experiment report to archive (run `mimae experiment run` first)")
    out.mkdir(parents=True, exist_ok=True)
    for name in (*REPORT_FILES, data.name):
        shutil.copy2(folder / name, out / name)
    if (folder / "figures").is_dir():
        shutil.copytree(folder / "figures", out / "figures", dirs_exist_ok=True)
    content = json.loads(data.read_text())
    listed = content["runs"] if "runs" in content else [run for group in content["groups"] for run in group["runs"]]
    runs = [(folder / run).resolve() for run in listed]  # a redrawn page lists them relative to its folder
    copied = []
    for run in runs:
        target = out / "runs" / run.name
        for pattern in RUN_FILES:
            for file in run.glob(pattern):
                (target / file.relative_to(run)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, target / file.relative_to(run))
        copied.append(target)
    relative = {f'"{run}"': f'"runs/{Path(run).name}"' for run in listed if not Path(run).is_absolute()}
    make_relative(out, {**{f"{run.parent.resolve()}/": "runs/" for run in runs}, **relative})
    return copied


def restore(archive_dir: str | Path, runs: str | Path) -> list[str]:
    """Copy the run folders of an archive (``archive_dir/runs/*``) into ``runs`` (the experiment's folder of runs,
    ``ROOT/NAME/SCALE``), where they count as finished: a run folder already there is left as it is. The names of
    the runs copied."""
    source = Path(archive_dir) / "runs"
    if not source.is_dir():
        raise ConfigError(f"{archive_dir} holds no archived runs ({source} is not a folder)")
    copied = []
    for run in sorted(p for p in source.iterdir() if p.is_dir()):
        target = Path(runs) / run.name
        if not target.exists():
            shutil.copytree(run, target)
            copied.append(run.name)
    return copied


def make_relative(out: Path, prefixes: dict[str, str]) -> None:
    """In every text file under ``out``, each absolute path prefix becomes its relative replacement (and the working
    directory's prefix nothing). A prefix is replaced only where a path starts, never inside a path (a relative
    path such as ``../../work/runs`` holds the text of the prefix ``/work/``), in one pass (the longest prefix first),
    so that no replacement is replaced again."""
    prefixes = {**prefixes, f"{Path.cwd().resolve()}/": ""}
    alternatives = "|".join(re.escape(prefix) for prefix in sorted(prefixes, key=len, reverse=True))
    starts_a_path = re.compile(rf"(?<![\w./-])({alternatives})")
    for file in Path(out).rglob("*"):
        if file.suffix in {".md", ".html", ".json", ".jsonl", ".yaml"}:
            original = file.read_text()
            text = starts_a_path.sub(lambda match: prefixes[match.group(1)], original)
            if text != original:
                file.write_text(text)
