"""Where a one-node Ray run's time goes: wall time per pass and per decide, on the driver.

    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/profile_ray.py --records 300000

The five steps of docs/scaling.md (normalize, quality, dedup.exact, dedup.minhash,
langid(keep=["en"])) on ``ik.synth.corpus(N, seed=0)``, a local Ray instance with
``num_cpus=2``. The executor's ``_rows`` (one pass: plan, read or spill, steps, results
back) and ``record_decisions`` (the decisions of one pass, on the driver) are wrapped with timers; ``--spill``
and ``--where`` force the one-node choices off (``--spill off --where cluster``: the
executor as before they existed, recomputing each pass and shuffling MinHash's bands).
Prints one JSON line per phase and the run's totals. ``--timeline`` also prints each task
Ray ran (start from the first task, seconds, worker, name, from ``ray.timeline()``) and,
per pass, the CPU-seconds its tasks left idle on the run's CPUs:

    flock /tmp/ik-heavy.lock .venv/bin/python benchmarks/profile_ray.py --records 1000000 --batch-size 100000 --timeline
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
    parser.add_argument("--timeline", action="store_true", help="print the tasks Ray ran and each pass's idle CPU time")
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
    tasks = _tasks(ray.timeline()) if args.timeline else []
    ray.shutdown()
    for phase in phases:
        print(json.dumps(phase))
    for task in tasks:
        print(json.dumps(task))
    for name, idle in _idle(tasks, cpus=2).items():
        print(json.dumps({"pass": name, "idle_cpu_s": idle}))
    print(json.dumps({"run_total": round(total, 2), "kept": result.records_out,
                      "worker_step_seconds": {r["step"]: round(r["seconds"], 2)
                                              for r in result.report().iter_rows(named=True)}}))


def _tasks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks of the run (Ray Data's and the warm-up), in start order."""
    ran = [e for e in events if e.get("ph") == "X" and e.get("cat", "").startswith("task::")
           and "Actor" not in e["cat"]]
    if not ran:
        return []
    t0 = min(e["ts"] for e in ran)
    return [{"start_s": round((e["ts"] - t0) / 1e6, 2), "seconds": round(e["dur"] / 1e6, 2),
             "worker": e["tid"].removeprefix("worker:")[:8], "task": e["cat"].removeprefix("task::")}
            for e in sorted(ran, key=lambda e: e["ts"])]


def _idle(tasks: list[dict[str, Any]], cpus: int) -> dict[str, float]:
    """Per kind of task (one per pass): CPU-seconds between its first start and its last end
    that no task of that kind used."""
    out = {}
    for name in dict.fromkeys(t["task"] for t in tasks):
        mine = [t for t in tasks if t["task"] == name]
        span = max(t["start_s"] + t["seconds"] for t in mine) - min(t["start_s"] for t in mine)
        out[name] = round(cpus * span - sum(t["seconds"] for t in mine), 2)
    return out


if __name__ == "__main__":
    main()
