"""Benchmark decontamination: n-gram overlap and rephrase detection.

- :class:`Decontaminate` (``ik.decontaminate``, recipe name ``decontaminate``): the step.
- :mod:`~instructkit.decontam.benchmarks` (``ik.benchmarks``): benchmark loaders.
- :func:`contamination_report`: per benchmark, the records caught, side by side with the item.

Example:
    >>> import instructkit as ik
    >>> step = ik.decontaminate([{"gsm8k": "gsm8k_test.jsonl"}], n=13)
    >>> step
    Decontaminate(benchmarks=[{'gsm8k': 'gsm8k_test.jsonl'}])
"""

from instructkit.decontam.benchmarks import Benchmark
from instructkit.decontam.decontaminate import Decontaminate
from instructkit.decontam.report import contamination_report

__all__ = ["Benchmark", "Decontaminate", "contamination_report"]
