"""Shared benchmark harness: the numbers in RESULTS.md come from the functions users call.

- :func:`corpus` builds inputs with ``ik.synth.corpus`` (cached by arguments);
- :func:`measure` runs one job in a fresh child process and returns its wall time and peak
  RSS (``VmHWM`` of the child), so jobs do not inherit each other's memory;
- per-step figures come from ``ik.bench`` itself.

Example:
    >>> from harness import measure                                        # doctest: +SKIP
    >>> measure("streaming", "bench_scaling:job_stream", path="c.jsonl")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(os.environ.get("IK_BENCH_CACHE", tempfile.gettempdir())) / "ik-bench"


def corpus(n: int, seed: int = 0, **kwargs: Any) -> Path:
    """A synthetic corpus of ``n`` records (built once per argument set, then reused)."""
    import instructkit as ik

    key = "-".join(f"{k}={v}" for k, v in sorted(kwargs.items()))
    path = CACHE / f"corpus-{n}-{seed}-{key or 'default'}.jsonl"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        ik.synth.corpus(n, seed=seed, path=path, **kwargs)
    return path


def measure(label: str, target: str, repeats: int = 1, **kwargs: Any) -> dict[str, Any]:
    """Run ``module:function(**kwargs)`` in a child process ``repeats`` times.

    Returns the median wall seconds, the max peak RSS in MB and the function's own result.
    """
    walls, peaks, result = [], [], None
    for _ in range(repeats):
        code = (
            f"import sys; sys.path.insert(0, {str(HERE)!r})\n"
            f"from harness import _child; _child({target!r}, {json.dumps(kwargs)!r})\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "INSTRUCTKIT_QUIET": "1", "HF_HUB_OFFLINE": "1"})
        if proc.returncode != 0:
            raise RuntimeError(f"{label} failed:\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        walls.append(out["seconds"])
        peaks.append(out["peak_rss_mb"])
        result = out["result"]
    return {"label": label, "seconds": statistics.median(walls), "peak_rss_mb": max(peaks), "result": result}


def _child(target: str, kwargs_json: str) -> None:
    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name)
    start = time.perf_counter()
    result = fn(**json.loads(kwargs_json))
    seconds = time.perf_counter() - start
    peak = 0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "result": result}))


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A GitHub markdown table of ``rows`` (dicts) with ``columns``."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |\n" for r in rows)
    return head + body


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else str(v)
