"""MinHash dedup speed, memory and accuracy: ik.dedup.minhash against its peers, in one run.

Every method runs in its own child process (so peak RSS is its own) on the same seeded
synthetic near-duplicate corpus (ik.synth; ~100 words per record, 30% copies with 0-10% of
their words changed, true Jaccard of word 5-gram shingles recorded). Reported: documents/s
(median of --repeat runs), ratio to the fastest peer and to the datasketch loop, peak RSS,
and precision/recall against the true Jaccard at the threshold.

- ik: ``ik.dedup.minhash(threshold, num_perm)``; the corpus streams in batches through
  ``observe`` and one ``decide`` (as an out-of-core executor runs it).
- datasketch: a plain loop, MinHash (sha1 shingle hashes) + MinHashLSH insert/query.
- text-dedup / datatrove: their MinHash pipelines, from their own venvs (--textdedup-python,
  --datatrove-python), on the corpus written as JSONL; wall time of the whole command.

Usage:
    flock /tmp/ik-heavy.lock .venv/bin/python benchmarks/bench_dedup.py --n 100000 --peer-n 50000
    flock /tmp/ik-heavy.lock .venv/bin/python benchmarks/bench_dedup.py --n 1000000 --peers none --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
DATATROVE_SCRIPT = r"""
import sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupSignature, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
src, work, tok = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
kw = {}
if tok == "whitespace":
    from datatrove.utils.word_tokenizers import WhitespaceTokenizer
    kw = {"language": WhitespaceTokenizer()}
t = time.perf_counter()
LocalPipelineExecutor([JsonlReader(src), MinhashDedupSignature(output_folder=f"{work}/sig", config=cfg, **kw)],
                      tasks=1, workers=1, logging_dir=f"{work}/l1").run()
LocalPipelineExecutor([MinhashDedupBuckets(input_folder=f"{work}/sig", output_folder=f"{work}/buckets", config=cfg)],
                      tasks=cfg.num_buckets, workers=1, logging_dir=f"{work}/l2").run()
LocalPipelineExecutor([MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids", config=cfg)],
                      tasks=1, logging_dir=f"{work}/l3").run()
LocalPipelineExecutor([JsonlReader(src), MinhashDedupFilter(input_folder=f"{work}/remove_ids"), JsonlWriter(f"{work}/out")],
                      tasks=1, workers=1, logging_dir=f"{work}/l4").run()
print("SECONDS", time.perf_counter() - t)
"""


def corpus(n: int, seed: int, batch: int):
    import instructkit as ik

    return ik.synth.iter_near_duplicates(n, seed=seed, batch_size=batch)


def evaluate(ids, dup_of, truth_j, jaccard, left, right, threshold):
    """Recall over true pairs (copy, original, J >= t) found in one cluster; precision over
    predicted (removed, matched) pairs whose true Jaccard (``jaccard(left, right)``) >= t."""
    import polars as pl

    from instructkit.dedup import _kernel as K

    ids, dup_of = pl.Series(ids, dtype=pl.String), pl.Series(dup_of, dtype=pl.String)
    n = len(ids)
    root = K.components(n, left, right)
    frame = pl.DataFrame({"id": ids, "dup_of": dup_of, "j": truth_j}).with_row_index("i")
    pairs = frame.filter(pl.col("dup_of").is_not_null() & (pl.col("j") >= threshold)).join(
        frame.select(pl.col("id").alias("dup_of"), pl.col("i").alias("o")), on="dup_of")
    a, b = pairs["i"].to_numpy().astype(np.int64), pairs["o"].to_numpy().astype(np.int64)
    recall = float((root[a] == root[b]).mean()) if a.size else 1.0
    true_j = jaccard(left, right) if left.size else np.empty(0)
    precision = float((true_j >= threshold).mean()) if left.size else 1.0
    return precision, recall


def run_ik(args) -> dict:
    import polars as pl

    import instructkit as ik
    from instructkit.dedup._spill import Rows

    step = ik.dedup.minhash(threshold=args.threshold, num_perm=args.num_perm)
    # compile (or load from numba's cache) outside the timed region, as a warm process would
    step.decide([step.observe(next(iter(corpus(200, args.seed + 1, 200))).to_polars())])
    states, truth_parts = [], []
    observe = 0.0
    for batch in corpus(args.n, args.seed, args.batch):
        frame = batch.to_polars()
        truth_parts.append(frame.select("id", "dup_of", pl.col("jaccard").fill_null(0.0)))
        t = time.perf_counter()
        states.append(step.observe(frame))
        observe += time.perf_counter() - t
        del frame, batch
    t = time.perf_counter()
    drops = step.decide(states)
    decide = time.perf_counter() - t
    c = step.cluster(states)  # the same clusters, for the evaluation (not timed)
    truth = pl.concat(truth_parts)
    removed = np.flatnonzero(c.kept != np.arange(truth.height))
    rows = Rows([s.part() for s in states])
    p, r = evaluate(truth["id"], truth["dup_of"], truth["jaccard"].to_numpy(),
                    lambda a, b: rows.jaccard(a, b, exact=True, num_perm=args.num_perm),
                    removed, c.kept[removed], args.threshold)
    bands, rows_ = step.banding()
    n = truth.height
    return {
        "method": "ik.dedup.minhash", "docs": n, "seconds": observe + decide, "observe_s": observe,
        "decide_s": decide, "removed": int(removed.size), "precision": p, "recall": r,
        "candidates": c.candidates, "verified": c.verified, "banding": f"{bands}x{rows_}",
        "dropped": drops.height, "ram_B_per_doc": round(sum(s.ram_bytes() for s in states) / n),
        "disk_B_per_doc": round(sum(s.disk_bytes() for s in states) / n),
    }


def run_datasketch(args) -> dict:
    import re

    from datasketch import MinHash, MinHashLSH

    from instructkit.dedup import _kernel as K

    word = re.compile(r"\w+")
    frames = list(corpus(args.peer_n, args.seed, args.peer_n))
    frame = frames[0].to_polars()
    texts = K.document_text(frame, ["instruction", "input", "output"]).to_list()
    t = time.perf_counter()
    lsh = MinHashLSH(threshold=args.threshold, num_perm=args.num_perm)
    left, right = [], []
    for i, text in enumerate(texts):
        w = word.findall(text.lower())
        shingles = {" ".join(w[j : j + 5]).encode() for j in range(max(len(w) - 4, 1))}
        m = MinHash(num_perm=args.num_perm)
        m.update_batch(shingles)
        hits = lsh.query(m)
        if hits:
            left.append(i)
            right.append(min(hits))
        else:
            lsh.insert(i, m)
    seconds = time.perf_counter() - t
    hashes, counts = K.shingle_hashes(K.document_text(frame, ["instruction", "input", "output"]), 5, "word", 1)
    p, r = evaluate(frame["id"].to_list(), frame["dup_of"].to_list(), frame["jaccard"].fill_null(0.0).to_numpy(),
                    lambda a, b: K.exact_jaccard(hashes, counts, a, b),
                    np.array(left, dtype=np.int64), np.array(right, dtype=np.int64), args.threshold)
    bands, rows = lsh.b, lsh.r
    return {"method": "datasketch loop", "docs": len(texts), "seconds": seconds, "removed": len(left),
            "precision": p, "recall": r, "banding": f"{bands}x{rows}"}


def write_jsonl(args, path: Path) -> None:
    from instructkit.dedup import _kernel as K

    frame = next(iter(corpus(args.peer_n, args.seed, args.peer_n))).to_polars()
    frame.select(pl_id(), K.document_text(frame, ["instruction", "input", "output"]).alias("text")).write_ndjson(path)


def pl_id():
    import polars as pl

    return pl.col("id")


def run_textdedup(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "corpus.jsonl"
        write_jsonl(args, data)
        cmd = [args.textdedup_python, "-m", "text_dedup.minhash", "--path", "json", "--data_files", str(data),
               "--split", "train", "--column", "text", "--num_perm", str(args.num_perm), "--threshold",
               str(args.threshold), "--output", f"{tmp}/out", "--cache_dir", f"{tmp}/cache", "--num_proc", "2"]
        env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t
        if proc.returncode:
            raise RuntimeError(f"text-dedup failed: {proc.stderr[-2000:]}")
        after = [line for line in proc.stderr.splitlines() + proc.stdout.splitlines() if "After" in line]
    return {"method": "text-dedup minhash (num_proc=2)", "docs": args.peer_n, "seconds": seconds,
            "note": "kept " + after[-1].split(":")[-1].strip() if after else ""}


def run_datatrove(args, tokenizer: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "in"
        data.mkdir()
        write_jsonl(args, data / "corpus.jsonl")
        script = Path(tmp) / "dt.py"
        script.write_text(DATATROVE_SCRIPT)
        t = time.perf_counter()
        proc = subprocess.run([args.datatrove_python, str(script), str(data), f"{tmp}/work", tokenizer],
                              capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        seconds = time.perf_counter() - t
        if proc.returncode:
            raise RuntimeError(f"datatrove failed: {proc.stderr[-2000:]}")
    return {"method": f"datatrove minhash ({tokenizer} tokenizer, 1 worker)", "docs": args.peer_n, "seconds": seconds}


def child(args) -> None:
    if args.run == "ik":
        out = run_ik(args)
    elif args.run == "datasketch":
        out = run_datasketch(args)
    elif args.run == "textdedup":
        out = run_textdedup(args)
    elif args.run.startswith("datatrove"):
        out = run_datatrove(args, args.run.split(":")[1])
    else:
        raise ValueError(args.run)
    # peak RSS of this process (the peers' own processes are children: counted apart)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["children_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def spawn(args, run: str) -> dict:
    cmd = [sys.executable, str(HERE), "--run", run, "--n", str(args.n), "--peer-n", str(args.peer_n),
           "--threshold", str(args.threshold), "--num-perm", str(args.num_perm), "--seed", str(args.seed),
           "--batch", str(args.batch), "--textdedup-python", args.textdedup_python,
           "--datatrove-python", args.datatrove_python]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        return {"method": run, "error": (proc.stderr or proc.stdout)[-600:]}
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="documents for ik")
    ap.add_argument("--peer-n", type=int, default=50_000, help="documents for the peers")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of ik and the datasketch loop")
    ap.add_argument("--peer-repeat", type=int, default=1, help="runs of text-dedup and datatrove")
    ap.add_argument("--peers", default="datasketch,textdedup,datatrove:whitespace,datatrove:spacy")
    ap.add_argument("--textdedup-python", default="/tmp/peer-textdedup/bin/python")
    ap.add_argument("--datatrove-python", default="/tmp/peer-datatrove/bin/python")
    ap.add_argument("--run", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        child(args)
        return
    peers = [p for p in args.peers.split(",") if p and p != "none"]
    results: dict[str, list[dict]] = {}
    for i in range(args.repeat):
        for run in ["ik", *peers]:
            if i < args.peer_repeat or run in ("ik", "datasketch"):
                results.setdefault(run, []).append(spawn(args, run))
    rows = []
    for run, rs in results.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            rows.append({"method": run, "error": rs[0]["error"]})
            continue
        rate = statistics.median(r["docs"] / r["seconds"] for r in ok)
        rows.append({**ok[0], "docs_per_s": rate, "runs": len(ok), "method": f"{ok[0]['method']} [{len(ok)} runs]",
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in ok)})
    ik_rate = next((r["docs_per_s"] for r in rows if r["method"].startswith("ik.dedup.minhash")), None)
    peer_rates = [r["docs_per_s"] for r in rows if r.get("docs_per_s") and not r["method"].startswith("ik.")]
    print("| method | docs | docs/s (median of runs) | ik ratio | peak RSS MB | precision | recall | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['method']} | - | failed | - | - | - | - | {r['error'][-200:]!r} |")
            continue
        ratio = f"{ik_rate / r['docs_per_s']:.1f}x" if ik_rate else "-"
        prec = f"{r['precision']:.4f}" if "precision" in r else "-"
        rec = f"{r['recall']:.4f}" if "recall" in r else "-"
        keys = ("banding", "candidates", "verified", "removed", "ram_B_per_doc", "disk_B_per_doc", "note")
        notes = ", ".join(f"{k}={r[k]}" for k in keys if k in r)
        if "observe_s" in r:
            notes += f", observe={r['observe_s']:.2f}s, decide={r['decide_s']:.2f}s (first run)"
        print(f"| {r['method']} | {r['docs']:,} | {r['docs_per_s']:,.0f} | {ratio} | {r['peak_rss_mb']:.0f} "
              f"(children {r.get('children_peak_rss_mb', 0):.0f}) | {prec} | {rec} | {notes} |")
    if ik_rate and peer_rates:
        print(f"\nik vs fastest peer: {ik_rate / max(peer_rates):.1f}x")


if __name__ == "__main__":
    main()
