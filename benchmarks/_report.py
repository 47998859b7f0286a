"""A benchmark report: sections of result rows, written as Markdown and as JSON.

Each row is a dict of figures; a section renders as one Markdown table whose columns are the
union of its rows' keys, in first-seen order. Lines are also printed as they come, so a run that
is cut short still shows what it measured.

    >>> report = Report("demo", {"device": "cpu"})
    >>> report.add("speed", {"batch": 8, "tokens/s": 81.24})
    batch: 8  tokens/s: 81.2
    >>> print(report.markdown().splitlines()[-1])
    | 8 | 81.2 |
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return str(value).replace("|", "/")


class Report:
    """Figures of one benchmark run, by section, with the run's facts (``meta``)."""

    def __init__(self, title: str, meta: dict[str, Any]) -> None:
        self.title = title
        self.meta = dict(meta)
        self.sections: dict[str, list[dict[str, Any]]] = {}
        self.notes: dict[str, list[str]] = {}
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the report was started."""
        return time.perf_counter() - self.started

    def add(self, section: str, row: dict[str, Any]) -> None:
        """Add a row of figures to ``section`` (and print it)."""
        self.sections.setdefault(section, []).append(dict(row))
        print("  ".join(f"{k}: {_cell(v)}" for k, v in row.items()), flush=True)

    def note(self, section: str, text: str) -> None:
        """A sentence under ``section``'s table (and print it)."""
        self.sections.setdefault(section, [])
        self.notes.setdefault(section, []).append(text)
        print(f"[{section}] {text}", flush=True)

    def markdown(self) -> str:
        """The whole report as Markdown: facts, then one table (and notes) per section."""
        lines = [f"# {self.title}", ""]
        lines += [f"- {k}: {_cell(v)}" for k, v in self.meta.items()]
        for section, rows in self.sections.items():
            lines += ["", f"## {section}", ""]
            columns = list(dict.fromkeys(k for row in rows for k in row))
            if columns:
                lines.append("| " + " | ".join(columns) + " |")
                lines.append("|" + "---|" * len(columns))
                for row in rows:
                    lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
            lines += [""] * bool(rows and self.notes.get(section))
            lines += self.notes.get(section, [])
        return "\n".join(lines)

    def write(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path`` (Markdown) and the same figures as JSON next to it."""
        md = Path(path)
        md.parent.mkdir(parents=True, exist_ok=True)
        self.meta["wall_s"] = round(self.elapsed(), 1)
        md.write_text(self.markdown() + "\n")
        data = {"title": self.title, "meta": self.meta, "sections": self.sections}
        data["notes"] = self.notes
        js = md.with_suffix(".json")
        js.write_text(json.dumps(data, indent=1, default=str) + "\n")
        return md, js
