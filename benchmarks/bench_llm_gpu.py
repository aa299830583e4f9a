"""GPU check of the model scores: IFD over 10k Alpaca records with a ~1B local model.

Measures, on one CUDA GPU, the tokens/s of ``ik.score.ifd`` (the transformers backend,
batched) against a plain transformers loop that computes the same two losses per record one
at a time, checks that both give the same IFD (to 1e-3 in bf16), and, when vLLM is installed,
the throughput of ``LLM.from_vllm`` generation. Without ``--model`` it builds a random ~1B
Llama (TinyLlama's shape) with an offline tokenizer, so nothing is downloaded; pass a local
folder of a real 0.5-1B model for real figures.

Run on a CUDA machine (skips cleanly elsewhere):

    HF_HUB_OFFLINE=1 python benchmarks/bench_llm_gpu.py --records 10000 \
        --data ../shared/data/instructions/alpaca_en_demo.json

Writes ``benchmarks/results/llm_gpu.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "llm_gpu.md"
sys.path.insert(0, str(ROOT / "benchmarks"))


def _records(data: Path, n: int) -> list[dict[str, str]]:
    import instructkit as ik

    rows = ik.read(data).to_polars().select("instruction", "input", "output").to_dicts()
    return [rows[i % len(rows)] for i in range(n)]


def plain_loop(model_dir: Path, prompts: list[str], responses: list[str]) -> tuple[list[float], int, float]:
    """IFD with plain transformers, one record at a time: the baseline."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).cuda().eval()

    def loss(prompt: str, response: str) -> tuple[float, int]:
        enc = tok(prompt + response, return_offsets_mapping=True)
        ids = torch.tensor([enc["input_ids"]], device="cuda")
        labels = ids.clone()
        for t, (s, e) in enumerate(enc["offset_mapping"]):
            if s < len(prompt) or e <= s:
                labels[0, t] = -100
        with torch.no_grad():
            return float(model(input_ids=ids, labels=labels).loss), ids.shape[1]

    torch.cuda.synchronize()
    start, tokens, out = time.perf_counter(), 0, []
    for p, r in zip(prompts, responses, strict=True):
        (c, n1), (a, n2) = loss(p, r), loss("", r)
        tokens += n1 + n2
        out.append(c / a)
    torch.cuda.synchronize()
    return out, tokens, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "instructions" / "alpaca_en_demo.json")
    parser.add_argument("--model", type=Path, default=None, help="a local model folder (default: random ~1B Llama)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("bench_llm_gpu: no CUDA GPU here; skipped (run it on a GPU machine)")
        return
    import instructkit as ik
    from instructkit.templates.formats import get_format

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from bench_finetune_gpu import build_model

            model_dir = Path(tmp) / "llama-1b"
            build_model(model_dir)
        records = _records(args.data, args.records)
        fmt = get_format("alpaca", eos="")
        pairs = [fmt.split(r) for r in records]
        prompts, responses = [p for p, _ in pairs], [r for _, r in pairs]

        llm = ik.LLM.from_transformers(model_dir, device="cuda", dtype="bfloat16", batch_size=args.batch_size, cache=False)
        llm.load()
        torch.cuda.synchronize()
        start = time.perf_counter()
        ds = ik.Dataset.from_records(records).pipe(ik.score.ifd(llm))
        torch.cuda.synchronize()
        ours_s = time.perf_counter() - start
        base, tokens, base_s = plain_loop(model_dir, prompts, responses)
        ours = ds.to_polars()["ifd"].to_list()
        worst = max(abs(a - b) for a, b in zip(ours, base, strict=True) if a is not None)
        lines = [
            "## Model scores on a GPU (`ik.score.ifd`)",
            "",
            f"{args.records:,} Alpaca records, model {model_dir.name}, {torch.cuda.get_device_name()}.",
            "",
            "| | seconds | tokens/s |",
            "|---|---|---|",
            f"| ik.score.ifd (batch {args.batch_size}) | {ours_s:.1f} | {tokens / ours_s:,.0f} |",
            f"| plain transformers loop | {base_s:.1f} | {tokens / base_s:,.0f} |",
            "",
            f"Speed-up {base_s / ours_s:.2f}x; largest IFD difference {worst:.2e}.",
        ]
        try:
            import vllm  # noqa: F401
        except ImportError:
            lines += ["", "vLLM is not installed here: its throughput was not measured."]
        else:
            engine = ik.LLM.from_vllm(str(model_dir), cache=False)
            start = time.perf_counter()
            engine.chat([r["instruction"] for r in records[:1000]], max_tokens=128)
            lines += ["", f"vLLM: 1,000 chat requests of up to 128 tokens in {time.perf_counter() - start:.1f} s."]
        lines += ["", "Command: `HF_HUB_OFFLINE=1 python benchmarks/bench_llm_gpu.py "
                  f"--records {args.records}`"]
        RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
