"""Semantic dedup: precision/recall on built pairs, and speed on 100k records (static model).

Pairs (from ../shared/data/instructions):
- duplicates: an instruction and a rewording of it made here (synonym and phrase swaps,
  "How do I" -> "How can I", "Write" -> "Compose", ...; the wording changes, the request
  does not);
- same-topic non-duplicates: two different GSM8K train questions (same domain, same
  style), and two different Code Alpaca instructions that start with the same three words.

Precision and recall of ``cosine >= threshold`` per threshold, for the static model and for
MiniLM. Speed: ``ik.dedup.semantic`` (static model, default settings) on ``--n`` records
(real instructions cycled, each made distinct, 30% reworded copies), observed in batches of
10,000 as an out-of-core executor does, then one ``decide``; the content-hash cache is
cleared first.

``--ann`` times the neighbour-search stage of ``decide`` alone on 100k and 300k records
(the current k-means cells, numpy exact, faiss Flat / IVF range search, usearch exact /
HNSW k-NN) and the recall of the pairs with cosine >= threshold against exact all pairs.

Usage:
    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_semantic_dedup.py --n 100000
    flock /tmp/ik-heavy.lock .venv/bin/python benchmarks/bench_semantic_dedup.py --ann --models ""
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
# $IK_SHARED_DATA overrides ../shared/data (a git worktree lives elsewhere)
DATA = Path(os.environ.get("IK_SHARED_DATA", HERE.parents[1].parent / "shared" / "data")) / "instructions"
RESULTS = HERE.parent / "results" / "semantic_dedup.md"
SWAPS = [
    ("how do i", "how can i"), ("write", "compose"), ("give", "provide"), ("explain", "describe"),
    ("create", "make"), ("generate", "produce"), ("list", "name"), ("find", "determine"),
    ("a function", "a routine"), ("program", "script"), ("tell me", "let me know"),
    ("what is", "what's"), ("describe", "explain"), ("suggest", "recommend"), ("short", "brief"),
    ("summarize", "sum up"), ("identify", "point out"), ("calculate", "compute"),
]


def reword(text: str, rng: random.Random) -> str:
    """A rewording: every applicable swap made, a polite prefix or suffix sometimes added."""
    out = text
    for a, b in SWAPS:
        out = re.sub(rf"\b{re.escape(a)}\b", b, out, flags=re.IGNORECASE)
    r = rng.random()
    if r < 0.3:
        out = "Please " + out[:1].lower() + out[1:]
    elif r < 0.5:
        out = out.rstrip(".") + ", please."
    return out


def pairs(rng: random.Random, count: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    alpaca = [r["instruction"] for r in json.loads((DATA / "alpaca_en_demo.json").read_text())]
    code = [r["instruction"] for r in json.loads((DATA / "code_alpaca_2k.json").read_text())]
    gsm = [r["instruction"] for r in json.loads((DATA / "gsm8k_train_alpaca.json").read_text())]
    pool = [t for t in alpaca + code if t and reword(t, random.Random(0)) != t]
    pos = []
    for t in rng.sample(pool, count):
        pos.append((t, reword(t, rng)))
    neg = [tuple(rng.sample(gsm, 2)) for _ in range(count // 2)]
    by_start: dict[str, list[str]] = {}
    for t in code:
        by_start.setdefault(" ".join(t.lower().split()[:3]), []).append(t)
    groups = [g for g in by_start.values() if len(set(g)) > 1]
    while len(neg) < count:
        g = rng.choice(groups)
        a, b = rng.sample(sorted(set(g)), 2)
        neg.append((a, b))
    return pos, neg  # type: ignore[return-value]


def speed_records(base: list[str], n: int, rng: random.Random) -> list[dict]:
    """``n`` records: distinct texts of ``base`` in order, 30% reworded copies of earlier
    records; once ``base`` is used up (beyond ~140k records), two random base texts joined
    make each new distinct text."""
    records: list[dict] = []
    fresh = iter(base)
    for i in range(n):
        if i > 10 and rng.random() < 0.3:
            records.append({"instruction": reword(records[rng.randrange(i)]["instruction"], rng)})
        else:
            text = next(fresh, None)
            if text is None:
                text = base[rng.randrange(len(base))] + " " + base[rng.randrange(len(base))]
            records.append({"instruction": text})
    return records


# ---------------------------------------------------------------- neighbour search (--ann)
# Each method gets the vectors decide() searches (float16 round trip, identical vectors
# once) and returns candidate pairs (i < j); every method's candidates are checked with the
# same exact float32 dot, so recall measures only what the search misses.


def _check(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, t: float) -> np.ndarray:
    keep = lo != hi
    lo, hi = lo[keep], hi[keep]
    a, b = np.minimum(lo, hi).astype(np.int64), np.maximum(lo, hi).astype(np.int64)
    key = np.unique(a * len(v) + b)
    a, b = key // len(v), key % len(v)
    # in chunks: at 300k the cells yield ~35M pairs (gathering them at once is 33 GiB)
    step = 1 << 20
    ok = np.concatenate([np.einsum("ij,ij->i", v[a[s : s + step]], v[b[s : s + step]]) >= t
                         for s in range(0, len(key), step)] or [np.zeros(0, bool)])
    return key[ok]


def _exact_blocked(v: np.ndarray, t: float, rows: int = 4096, cols: int = 32768) -> np.ndarray:
    """Every pair, upper triangle, in row x column blocks (bounded memory at any n)."""
    keys = []
    n = len(v)
    for r0 in range(0, n, rows):
        q = v[r0 : r0 + rows]
        for c0 in range(r0, n, cols):
            sims = q @ v[c0 : c0 + cols].T
            r, c = np.nonzero(sims >= t)
            r, c = r + r0, c + c0
            up = c > r
            keys.append(r[up].astype(np.int64) * n + c[up])
    return np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)


def ann_methods(t: float, seed: int, threads: int) -> dict:
    """name -> function(v) returning ``(build_s, search_s, keys)``."""
    import faiss
    from usearch.index import Index
    from usearch.index import search as usearch_search

    sem = importlib.import_module("instructkit.dedup.semantic")

    faiss.omp_set_num_threads(threads)
    lower = t - 1e-3  # candidates a hair below t; the exact check decides

    def kmeans(v):
        t0 = time.perf_counter()
        cells = sem._cells(v, 3, seed)
        t1 = time.perf_counter()
        lo, hi = [], []
        for m in cells:
            a, b, _ = sem._pairs_within(v[m], m, t)
            lo.append(a)
            hi.append(b)
        keys = _check(v, np.concatenate(lo), np.concatenate(hi), t)
        return t1 - t0, time.perf_counter() - t1, keys

    def numpy_exact(v):
        t0 = time.perf_counter()
        keys = _exact_blocked(v, t)
        return 0.0, time.perf_counter() - t0, keys

    def faiss_range(index, v, t0):
        t1 = time.perf_counter()
        lo, hi = [], []
        for s in range(0, len(v), 8192):
            lims, _, ids = index.range_search(v[s : s + 8192], lower)
            q = np.repeat(np.arange(s, s + len(lims) - 1), np.diff(lims.astype(np.int64)))
            up = ids > q
            lo.append(q[up])
            hi.append(ids[up])
        keys = _check(v, np.concatenate(lo), np.concatenate(hi), t)
        return t1 - t0, time.perf_counter() - t1, keys

    def faiss_flat(v):
        t0 = time.perf_counter()
        index = faiss.IndexFlatIP(v.shape[1])
        index.add(v)
        return faiss_range(index, v, t0)

    def faiss_ivf(nprobe):
        def run(v):
            t0 = time.perf_counter()
            nlist = int(4 * np.sqrt(len(v)))
            quant = faiss.IndexFlatIP(v.shape[1])
            index = faiss.IndexIVFFlat(quant, v.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed
            rng = np.random.default_rng(seed)
            index.train(v[np.sort(rng.choice(len(v), min(len(v), 64 * nlist), replace=False))])
            index.add(v)
            index.nprobe = nprobe
            return faiss_range(index, v, t0)
        return run

    def knn_pairs(dist, ids):
        q = np.repeat(np.arange(len(ids)), ids.shape[1])
        ids, dist = ids.ravel().astype(np.int64), dist.ravel()
        ok = (dist <= 1 - lower) & (ids >= 0) & (ids < len(q))
        return q[ok], ids[ok]

    def usearch_exact(k):
        def run(v):
            t0 = time.perf_counter()
            m = usearch_search(v, v, k, "ip", exact=True, threads=threads)
            keys = _check(v, *knn_pairs(m.distances, m.keys), t)
            return 0.0, time.perf_counter() - t0, keys
        return run

    def usearch_hnsw(conn, ef_add, ef_search, k):
        def run(v):
            t0 = time.perf_counter()
            index = Index(ndim=v.shape[1], metric="ip", dtype="f32", connectivity=conn,
                          expansion_add=ef_add, expansion_search=ef_search)
            index.add(np.arange(len(v)), v, threads=threads)
            t1 = time.perf_counter()
            m = index.search(v, k, threads=threads)
            keys = _check(v, *knn_pairs(m.distances, m.keys), t)
            return t1 - t0, time.perf_counter() - t1, keys
        return run

    return {
        "k-means cells (current, probes=3)": kmeans,
        "numpy exact, blocked upper triangle": numpy_exact,
        "faiss IndexFlatIP range_search (exact)": faiss_flat,
        "faiss IndexIVFFlat nlist=4sqrt(n) nprobe=8": faiss_ivf(8),
        "faiss IndexIVFFlat nlist=4sqrt(n) nprobe=16": faiss_ivf(16),
        "usearch exact=True k=32": usearch_exact(32),
        "usearch HNSW M=16 efC=64 efS=64 k=32": usearch_hnsw(16, 64, 64, 32),
        "usearch HNSW M=8 efC=32 efS=48 k=32": usearch_hnsw(8, 32, 48, 32),
    }


def ann_section(lines: list[str], base: list[str], args: argparse.Namespace) -> None:
    """Neighbour-search stage alone: time and recall of the pairs at ``--ann-threshold``."""
    from instructkit.embed import embed

    t = args.ann_threshold
    methods = ann_methods(t, args.seed, args.threads)
    wanted = [m for m in methods if not args.ann_methods or any(w in m for w in args.ann_methods.split(","))]
    out = ["", f"Neighbour search at threshold {t} ({args.threads} threads; medians of {args.repeats}; "
           f"load average {os.getloadavg()[0]:.1f} at the start, 2 cores shared).", ""]
    for n in [int(x) for x in args.ann_n.split(",")]:
        records = speed_records(base, n, random.Random(args.seed))
        v = embed([r["instruction"] for r in records], model="static").astype(np.float16)
        v = np.unique(v, axis=0).astype(np.float32)  # decide() searches identical vectors once
        rng = np.random.default_rng(args.seed)
        if n <= args.ann_full:
            t0 = time.perf_counter()
            truth = _exact_blocked(v, t)
            how = f"all pairs (numpy blocked, {time.perf_counter() - t0:.0f} s)"
            sample = None
        else:
            sample = np.sort(rng.choice(len(v), 4000, replace=False))
            sims = v[sample] @ v.T
            r, c = np.nonzero(sims >= t)
            r = sample[r]
            keep = r != c
            truth = np.unique(np.minimum(r, c)[keep].astype(np.int64) * len(v) + np.maximum(r, c)[keep])
            how = "pairs of 4,000 random rows against all rows"
        per_row = np.bincount(np.concatenate([truth // len(v), truth % len(v)]), minlength=len(v))
        out += [f"{n:,} records, {len(v):,} distinct vectors, {len(truth):,} true pairs ({how}); "
                f"neighbours above {t} per row: max {per_row.max()}, 99.9th pct {np.percentile(per_row, 99.9):.0f}", "",
                "| method | build s | search s | total s | recall | runs |", "|---|---|---|---|---|---|"]
        print("\n".join(out[-4:]), flush=True)
        for name in wanted:
            if n > args.ann_full and "exact, blocked" in name:
                continue
            runs = []
            for _ in range(args.repeats):
                build, search, keys = methods[name](v)
                runs.append((build + search, build, search))
                if build + search > args.once_over:  # too slow to be chosen: one run says so
                    break
            total, build, search = sorted(runs)[len(runs) // 2]
            if sample is not None:
                a, b = keys // len(v), keys % len(v)
                keys = keys[np.isin(a, sample) | np.isin(b, sample)]
            recall = np.isin(truth, keys).mean() if len(truth) else 1.0
            out.append(f"| {name} | {build:.1f} | {search:.1f} | {total:.1f} | {recall:.4f} | {len(runs)} |")
            print(out[-1], flush=True)
        out.append("")
    print("\n".join(out))
    if args.ann_out:
        Path(args.ann_out).write_text("\n".join(out), encoding="utf-8")
    else:  # the measured tables of the results page's ANN section
        RESULTS.write_text(_keep_ann(RESULTS, "\n".join(out).strip() + "\n", replace=True), encoding="utf-8")


ANN_MARK = "## Neighbour search"
ANN_TABLES = "<!-- ann tables -->"


def _keep_ann(path: Path, text: str, replace: bool = False) -> str:
    """The results page with its hand-written ANN section kept: ``text`` is the speed part
    (``replace=False``) or the measured tables inside the ANN section (``replace=True``)."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    head, mark, section = old.partition(ANN_MARK)
    if not replace:
        return text + (mark + section if mark else "")
    prose, _, _ = section.partition(ANN_TABLES)
    return head + ANN_MARK + prose + ANN_TABLES + "\n" + text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="static,minilm", help="models of the pairs table")
    ap.add_argument("--ann", action="store_true", help="time the neighbour-search stage alone")
    ap.add_argument("--ann-n", default="100000,300000", help="record counts of --ann")
    ap.add_argument("--ann-full", type=int, default=100_000, help="exact all-pairs truth up to this n")
    ap.add_argument("--ann-threshold", type=float, default=0.9)
    ap.add_argument("--ann-methods", default="", help="comma-separated name parts (default all)")
    ap.add_argument("--ann-out", default="", help="write the --ann tables here (default: into the results page)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--once-over", type=float, default=60.0, help="--ann: a method slower than this runs once")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parents[1] / "src"))

    import instructkit as ik
    from instructkit import embed

    rng = random.Random(args.seed)
    pos, neg = pairs(rng, args.pairs)
    lines = [
        "# Semantic dedup (ik.dedup.semantic)",
        "",
        "Command:",
        "",
        f"    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_semantic_dedup.py --n {args.n}",
        "",
        f"Pairs: {len(pos)} rewordings of Alpaca / Code Alpaca instructions (duplicates) and "
        f"{len(neg)} same-topic non-duplicates (two GSM8K train questions; two Code Alpaca "
        "instructions with the same first three words). Precision and recall of "
        "`cosine >= threshold`.",
        "",
        "| model | threshold | precision | recall |",
        "|---|---|---|---|",
    ]
    for model in filter(None, args.models.split(",")):
        cos = []
        for group in (pos, neg):
            a = embed.embed([p[0] for p in group], model=model)
            b = embed.embed([p[1] for p in group], model=model)
            cos.append(np.sum(a * b, axis=1))
        for t in (0.8, 0.85, 0.9, 0.95):
            tp, fp = int((cos[0] >= t).sum()), int((cos[1] >= t).sum())
            prec = tp / (tp + fp) if tp + fp else 1.0
            lines.append(f"| {model} | {t} | {prec:.3f} | {tp / len(pos):.3f} |")
        print("\n".join(lines[-4:]), flush=True)

    # speed: distinct texts (instructions, and the sentences of the outputs, of seven
    # shared files), 30% of the records reworded copies of earlier ones
    seen: dict[str, None] = {}
    for name in ("alpaca_en_demo.json", "code_alpaca_2k.json", "gpteacher_toolformer.json",
                 "gpteacher_roleplay.json", "gsm8k_train_alpaca.json", "new_codealpaca.json", "alpaca_zh_demo.json"):
        for r in json.loads((DATA / name).read_text()):
            seen.setdefault(r["instruction"].strip(), None)
            for sentence in re.split(r"(?<=[.!?])\s+|\n+", r.get("output") or ""):
                if len(sentence.split()) >= 4:
                    seen.setdefault(sentence.strip(), None)
    base = list(seen)
    rng.shuffle(base)
    records = speed_records(base, args.n, rng)
    if args.ann:
        ann_section(lines, base, args)
        return
    frame = ik.Dataset.from_records(records, source="s").to_polars()
    embed._VECTORS.clear()
    embed.embedder("static", "auto")  # load once, outside the timing (a few ms once cached)
    load = os.getloadavg()[0]
    step = ik.dedup.semantic()
    t0 = time.perf_counter()
    states = [step.observe(frame.slice(s, 10_000)) for s in range(0, frame.height, 10_000)]
    t_obs = time.perf_counter() - t0
    t1 = time.perf_counter()
    drops = step.decide(states)
    t_dec = time.perf_counter() - t1
    total = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += [
        "",
        f"Speed: {args.n:,} records (distinct instructions and output sentences of seven shared "
        f"files, {len(base):,} available; 30% reworded copies of earlier records), static model, threshold {step.threshold}, observed in batches of "
        f"10,000 then one decide. Load average (1 min) {load:.1f} at the start, 2 cores shared.",
        "",
        "| records | observe (embed + spill) s | decide s | total s | records/s | removed | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
        f"| {args.n:,} | {t_obs:.1f} | {t_dec:.1f} | {total:.1f} | {args.n / total:,.0f} | {drops.height:,} | {rss:,.0f} |",
        "",
    ]
    print("\n".join(lines[-3:]), flush=True)
    RESULTS.write_text(_keep_ann(RESULTS, "\n".join(lines) + "\n"), encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
