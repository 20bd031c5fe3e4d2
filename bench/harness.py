"""Timing helpers and the report writer shared by every benchmark section."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Timing:
    label: str
    samples_ms: list[float]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.samples_ms)
        index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
        return ordered[index]

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p95(self) -> float:
        return self.percentile(0.95)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms)


def time_each(label: str, inputs, call: Callable, warmup: int = 5) -> Timing:
    """Call `call(item)` for each input, after a few warm-up calls, and keep each duration."""
    inputs = list(inputs)
    for item in inputs[:warmup]:
        call(item)
    samples = []
    for item in inputs:
        started = time.perf_counter()
        call(item)
        samples.append((time.perf_counter() - started) * 1000)
    return Timing(label, samples)


@dataclass
class Report:
    title: str
    command: str
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    def section(self, heading: str, lines: list[str]) -> None:
        self.sections.append((heading, lines))
        print(f"\n## {heading}")
        for line in lines:
            print(line)

    def write(self, path: Path) -> None:
        lines = [
            f"# {self.title}",
            "",
            f"Measured {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} with `{self.command}`.",
            "",
        ]
        lines += ["## Machine", "", *machine_lines(), ""]
        for heading, body in self.sections:
            lines += [f"## {heading}", "", *body, ""]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines), encoding="utf-8")


def machine_lines() -> list[str]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    import django

    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {memory}",
        f"- {platform.platform()}; Python {platform.python_version()}; Django {django.get_version()}; PostgreSQL {postgres}",
        f"- commit {_git_commit()}",
        "- The machine is shared: compare figures within one run (the ratios), not across runs.",
    ]


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value >= 1 else f"{value:.2f} ms"
