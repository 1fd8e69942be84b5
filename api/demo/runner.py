"""The ``suanli demo`` command's body: run, report, write JSON, text and charts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from api.demo.charts import write_charts
from api.demo.report import dumps, render, render_text, summarize
from api.demo.simulate import DemoResult, run_demo

__all__ = ["DEFAULT_DB_NAME", "DemoOutput", "fresh_sqlite_url", "run"]

DEFAULT_DB_NAME = "suanli-demo.db"


@dataclass(frozen=True, slots=True)
class DemoOutput:
    result: DemoResult
    summary: dict[str, Any]
    text: str
    files: list[Path]


def fresh_sqlite_url(out: Path) -> str:
    """A new SQLite file in ``out`` (a previous demo database there is replaced)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / DEFAULT_DB_NAME
    for suffix in ("", "-wal", "-shm", ".writer.lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def run(
    out: Path,
    *,
    database_url: str | None = None,
    seed: int = 7,
    days: int = 3,
    traders: int = 12,
    console: Console | None = None,
    charts: bool = True,
) -> DemoOutput:
    """Run the demo; print the report to ``console`` (when given); write the files."""
    url = database_url or fresh_sqlite_url(out)
    out.mkdir(parents=True, exist_ok=True)
    if console is not None:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("simulating the market", total=None)

            def progress(done: int, total: int, phase: str) -> None:
                bar.update(
                    task,
                    completed=done,
                    total=total,
                    description=f"simulating the market ({phase})",
                )

            result = run_demo(
                database_url=url, seed=seed, days=days, traders=traders, progress=progress
            )
    else:
        result = run_demo(database_url=url, seed=seed, days=days, traders=traders)
    summary = summarize(result)
    text = render_text(summary)
    files = []
    json_path = out / "report.json"
    json_path.write_text(dumps(summary), encoding="utf-8")
    text_path = out / "report.txt"
    text_path.write_text(text, encoding="utf-8")
    files += [json_path, text_path]
    if charts:
        files += write_charts(result, out)
    if console is not None:
        console.print(render(summary))
        console.print(f"database: {url}")
        for path in files:
            console.print(f"wrote {path}")
    return DemoOutput(result, summary, text, files)
