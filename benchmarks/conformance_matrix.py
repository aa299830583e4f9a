"""The conformance matrix: every built-in step x every executor, pass or the difference.

Runs the dataset and configurations of tests/test_conformance.py (the test that enforces
this) and writes benchmarks/results/conformance.md:

    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/conformance_matrix.py
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import instructkit as ik
from instructkit.testing import EXECUTORS, differences, run_on

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"


def _conformance_module():  # noqa: ANN202 (the test module)
    # the test module imports its siblings (tiny_llama) as pytest lets it
    sys.path.insert(0, str(TESTS))
    spec = importlib.util.spec_from_file_location("test_conformance", TESTS / "test_conformance.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["test_conformance"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    import ray

    conf = _conformance_module()
    paths = [str(Path(ik.__file__).parents[1]), str(TESTS)]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}})
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            configs = conf.configs(folder)
            for name, cls in sorted(conf.builtin_steps().items()):
                step = cls(**configs[name])
                results, seconds = {}, {}
                for executor in EXECUTORS:
                    t0 = time.perf_counter()
                    results[executor] = run_on(step, conf.dataset(), executor, batch_size=2, workdir=folder)
                    seconds[executor] = time.perf_counter() - t0
                memory = results["memory"]
                cells = ["pass" if not differences(memory, results[e]) else
                         "FAIL: " + "; ".join(differences(memory, results[e])) for e in EXECUTORS[1:]]
                rows.append((name, cls.kind, len(memory), memory.removed.height, *cells,
                             *(f"{seconds[e]:.1f}" for e in EXECUTORS)))
                print(name, cells, flush=True)
    finally:
        ray.shutdown()
    lines = [
        "# Executor conformance",
        "",
        "Every built-in step of `instructkit.transform.registry()` on the 12-record dataset of",
        "tests/test_conformance.py (duplicates, a near duplicate, French, an e-mail address, a",
        "benchmark item, a refusal, an empty output, a record of a reference file), run",
        "`ds.pipe(step)` (memory), `Pipeline([step]).run(ds, output=dir, batch_size=2)` (local:",
        "6 batches) and the same with `executor=\"ray\"` (2 CPUs). A cell passes when the kept ids",
        "and their order, the columns and values, and the removed log (id, step, reason, detail)",
        "equal the in-memory result. Seconds include Ray's per-pass start-up (workers warm after the",
        "first step; dedup.minhash and decontaminate compile their kernels in each Ray worker).",
        "",
        "Command:",
        "",
        "    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/conformance_matrix.py",
        "",
        "| step | kind | kept | removed | local | ray | memory s | local s | ray s |",
        "|---|---|---|---|---|---|---|---|---|",
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
        "",
        f"{sum(all(c == 'pass' for c in row[4:6]) for row in rows)} of {len(rows)} steps pass on every executor.",
    ]
    (HERE / "results" / "conformance.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
