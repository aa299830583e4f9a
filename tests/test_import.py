import subprocess
import sys


def test_import_is_light_and_fast():
    code = (
        "import sys, time; t = time.perf_counter(); import instructkit as ik; "
        "dt = time.perf_counter() - t; "
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes', 'presidio_analyzer', "
        "'presidio_anonymizer', 'spacy', 'ray', 'datasets', 'numba') if m in sys.modules]; "
        "print(repr((dt, heavy)))"
    )
    times = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        dt, heavy = eval(out.stdout.strip())
        assert heavy == [], f"import instructkit pulled in {heavy}"
        times.append(dt)
    assert min(times) < 0.5, f"import took {min(times):.2f}s"


def test_public_names_resolve():
    import instructkit as ik

    for name in ("read", "Pipeline", "normalize", "quality", "split", "Dataset", "concat"):
        assert getattr(ik, name) is not None
