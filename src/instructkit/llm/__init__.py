"""Language models in the loop: one interface over transformers, vLLM and OpenAI-compatible
servers, with a persistent response cache (see :mod:`instructkit.llm.backends`).

Example:
    >>> import instructkit as ik
    >>> llm = ik.LLM.from_openai("http://localhost:8000/v1", "qwen2.5-7b")  # doctest: +SKIP
"""

from instructkit.llm.backends import LLM, VLLMLLM, OpenAILLM, TransformersLLM
from instructkit.llm.cache import ResponseCache, request_key

__all__ = ["LLM", "OpenAILLM", "TransformersLLM", "VLLMLLM", "ResponseCache", "request_key"]
