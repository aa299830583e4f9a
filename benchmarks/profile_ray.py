"""Where a one-node Ray run's time goes: wall time per pass and per decide, on the driver.

    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/profile_ray.py --records 300000

The five steps of docs/scaling.md (normalize, quality, dedup.exact, dedup.minhash,
langid(keep=["en"])) on ``ik.synth.corpus(N, seed=0)``, a local Ray instance with
``num_cpus=2``. The executor's ``_rows`` (one pass: plan, read or spill, steps, results
back) and ``record_decisions`` (the decisions of one pass, on the driver) are wrapped with timers; ``--spill``
and ``--where`` force the one-node choices off (``--spill off --where cluster``: the
executor as before they existed, recomputing each pass and shuffling MinHash's bands).
Prints one JSON line per phase and the run's totals.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--spill", choices=["auto", "off"], default="auto")
    parser.add_argument("--where", choices=["auto", "cluster"], default="auto")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import ray
    from bench_pipeline import steps
    from harness import corpus

    import instructkit as ik
    from instructkit.executors import ray as ray_executor
    from instructkit.executors import ray_minhash

    path = corpus(args.records)
    phases: list[dict[str, Any]] = []
    rows, record = ray_executor._rows, ray_executor.record_decisions

    def timed_rows(data: Any, todo: Any) -> Any:
        started = time.perf_counter()
        yield from rows(data, todo)
        phases.append({"phase": f"pass {len([p for p in phases if p['phase'].startswith('pass')]) + 1}",
                       "seconds": round(time.perf_counter() - started, 2)})

    def timed_record(manifest: Any, steps: Any, group: Any, *a: Any, **k: Any) -> None:
        started = time.perf_counter()
        record(manifest, steps, group, *a, **k)
        names = "+".join(steps[p].name for p in group)
        phases.append({"phase": f"decide {names}", "seconds": round(time.perf_counter() - started, 2)})

    ray_executor._rows, ray_executor.record_decisions = timed_rows, timed_record
    if args.where == "cluster":
        ray_minhash.alive_nodes = lambda: 2
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    phases.append({"phase": "ray.init", "seconds": round(time.perf_counter() - t0, 2)})
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = ik.Pipeline(steps("five")).run(path, executor="ray", output=Path(tmp) / "run",
                                                batch_size=args.batch_size,
                                                spill=False if args.spill == "off" else None)
        total = time.perf_counter() - started
    ray.shutdown()
    for phase in phases:
        print(json.dumps(phase))
    print(json.dumps({"run_total": round(total, 2), "kept": result.records_out,
                      "worker_step_seconds": {r["step"]: round(r["seconds"], 2)
                                              for r in result.report().iter_rows(named=True)}}))


if __name__ == "__main__":
    main()
