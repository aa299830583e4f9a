"""LLM backends behind one interface: local transformers, vLLM, and any OpenAI-compatible server.

Every backend answers batches of conversations with :meth:`LLM.chat` through the same
content-addressed :class:`~instructkit.llm.cache.ResponseCache`: a response is stored as soon
as it arrives, so a re-run, or a run resumed after ``kill -9``, sends no request twice. Local
backends also give log-probabilities of given text (:meth:`LLM.logprobs`), which the model
scores (``ik.score.ifd``, ``ik.score.perplexity``) are built on.

Heavy libraries (torch, transformers, vllm, openai) are imported when a backend first runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from instructkit._progress import progress
from instructkit.llm.cache import ResponseCache, default_cache_dir, request_key

Message = Mapping[str, str]
Conversation = Sequence[Message]


def _as_conversation(item: str | Conversation) -> list[dict[str, str]]:
    if isinstance(item, str):
        return [{"role": "user", "content": item}]
    turns = [{"role": str(m["role"]), "content": str(m["content"])} for m in item]
    if not turns:
        raise ValueError("a conversation needs at least one message")
    return turns


def _open_cache(cache: bool | str | Path | ResponseCache | None) -> ResponseCache | None:
    if cache is None or cache is False:
        return None
    if isinstance(cache, ResponseCache):
        return cache
    if cache is True:
        return ResponseCache(default_cache_dir() / "responses.sqlite")
    return ResponseCache(cache)


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text


class LLM:
    """A language model that answers conversations; build one with a ``from_*`` constructor.

    ``chat`` takes conversations (lists of ``{role, content}``, or plain strings as one user
    turn) and returns one answer each, in order. ``temperature=0`` is greedy; otherwise the
    backend samples with ``seed`` where it supports one. Answers are cut at ``stop`` strings.

    Example:
        >>> llm = LLM.from_openai("http://localhost:8000/v1", "my-model")  # doctest: +SKIP
        >>> llm.chat(["Name a fruit."], max_tokens=16)                      # doctest: +SKIP
        ['An apple.']
    """

    #: The model's name in cache keys and in the provenance of generated records.
    model: str = ""
    #: True for backends that give log-probabilities (:meth:`logprobs`).
    local: bool = False

    def __init__(self, cache: bool | str | Path | ResponseCache | None = True) -> None:
        self.cache = _open_cache(cache)
        self.requests_sent = 0

    def __getstate__(self) -> dict[str, Any]:
        # executors ship steps, and the models in them, to worker processes: what is loaded
        # (weights, engines, connections) loads again there, and the cache reopens by path
        state = {k: v for k, v in self.__dict__.items() if k not in self._unpicklable}
        state["cache"] = None if self.cache is None else self.cache.path
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.cache = _open_cache(state["cache"])
        self._reset()

    #: Attributes rebuilt in a worker process rather than pickled.
    _unpicklable: tuple[str, ...] = ()

    def _reset(self) -> None:
        """Rebuild the attributes listed in ``_unpicklable`` (after unpickling)."""

    @classmethod
    def from_transformers(
        cls,
        path: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        template: str | None = None,
        batch_size: int = 8,
        cache: bool | str | Path | ResponseCache | None = True,
    ) -> TransformersLLM:
        """A local ``transformers`` causal LM (a folder on disk; nothing is downloaded).

        ``template`` renders conversations with an instructkit prompt format (``alpaca``,
        ``llama2``, ...); without it the tokenizer's chat template is used.
        """
        return TransformersLLM(path, device=device, dtype=dtype, template=template,
                               batch_size=batch_size, cache=cache)

    @classmethod
    def from_openai(
        cls,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 60.0,
        requests_per_minute: float | None = None,
        cache: bool | str | Path | ResponseCache | None = True,
    ) -> OpenAILLM:
        """Any OpenAI-compatible chat-completions server: vLLM serve, llama.cpp server,
        Ollama, TGI, or the OpenAI API itself (``pip install instructkit[llm]``)."""
        return OpenAILLM(base_url, model, api_key=api_key, concurrency=concurrency,
                         max_retries=max_retries, backoff=backoff, timeout=timeout,
                         requests_per_minute=requests_per_minute, cache=cache)

    @classmethod
    def from_vllm(
        cls, model: str, *, cache: bool | str | Path | ResponseCache | None = True, **engine: Any
    ) -> VLLMLLM:
        """vLLM's offline engine on a local GPU (``pip install vllm``); ``engine`` options go to
        ``vllm.LLM``."""
        return VLLMLLM(model, cache=cache, **engine)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LLM:
        """An LLM from its recipe form: ``{"openai": {"base_url": ..., "model": ...}}``,
        ``{"transformers": {"path": ...}}`` or ``{"vllm": {"model": ...}}``.

        Example:
            >>> LLM.from_config({"openai": {"base_url": "http://localhost:8000/v1", "model": "m"}})
            OpenAILLM('openai:http://localhost:8000/v1:m')
        """
        builders = {"transformers": cls.from_transformers, "openai": cls.from_openai, "vllm": cls.from_vllm}
        if len(config) != 1 or next(iter(config)) not in builders:
            raise ValueError(f"an LLM in a recipe is one of {sorted(builders)}: {{backend: {{options}}}}, got {dict(config)!r}")
        (backend, options), = config.items()
        return builders[backend](**dict(options or {}))

    def to_config(self) -> dict[str, Any]:
        """The recipe form :meth:`from_config` reads (the response cache is left out)."""
        raise TypeError(f"{type(self).__name__} has no recipe form")

    # the public calls ----------------------------------------------------------------------
    def chat(
        self,
        conversations: Sequence[str | Conversation],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        stop: Sequence[str] = (),
    ) -> list[str]:
        """One answer per conversation, from the cache where it holds them."""
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        convs = [_as_conversation(c) for c in conversations]
        params = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
                  "seed": seed, "stop": list(stop)}
        keys = [request_key(self.model, c, params) for c in convs]
        answers: list[str | None] = [self.cache.get(k) if self.cache else None for k in keys]
        todo = [i for i, a in enumerate(answers) if a is None]
        if todo:
            stream = self._generate([convs[i] for i in todo], params)
            for j, text in progress(stream, total=len(todo), desc=f"generate {self.model}", unit="req"):
                i = todo[j]
                answers[i] = text
                if self.cache is not None:
                    self.cache.put(keys[i], text)
        return [a if a is not None else "" for a in answers]

    def logprobs(self, prompts: Sequence[str], completions: Sequence[str]) -> list[list[float]]:
        """Log-probability of each token of ``completion`` after ``prompt`` (local models)."""
        raise TypeError(f"{type(self).__name__} gives no log-probabilities; use a local model")

    def _generate(self, convs: list[list[dict[str, str]]], params: dict[str, Any]) -> Iterator[tuple[int, str]]:
        raise TypeError(f"{type(self).__name__} must implement _generate")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model!r})"


# ------------------------------------------------------------------------------------------
# local transformers


class TransformersLLM(LLM):
    """A causal LM loaded with transformers from a local folder. See :meth:`LLM.from_transformers`."""

    local = True

    def __init__(
        self,
        path: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        template: str | None = None,
        batch_size: int = 8,
        cache: bool | str | Path | ResponseCache | None = True,
    ) -> None:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} is not a local model folder (no config.json); instructkit never downloads "
                "models: download it first (huggingface-cli download ...) and pass its folder"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        super().__init__(cache)
        self.path, self.device, self.dtype = path, device, dtype
        self.template, self.batch_size = template, batch_size
        self.model = f"transformers:{path.resolve()}"
        self._loaded: tuple[Any, Any] | None = None

    _unpicklable = ("_loaded",)

    def to_config(self) -> dict[str, Any]:
        return {"transformers": {"path": str(self.path), "device": self.device, "dtype": self.dtype,
                                 "template": self.template, "batch_size": self.batch_size}}

    def _reset(self) -> None:
        self._loaded = None

    def load(self) -> tuple[Any, Any]:
        """The ``(model, tokenizer)``, loaded once, in eval mode."""
        if self._loaded is None:
            from instructkit.training.model import (
                load_base_model,
                load_tokenizer,
                resolve_device,
                resolve_dtype,
            )

            device = resolve_device(self.device)
            tokenizer = load_tokenizer(self.path)
            model = load_base_model(self.path, None, resolve_dtype(self.dtype, device, False), device)
            model.eval()
            self._loaded = (model, tokenizer)
        return self._loaded

    def render(self, conversation: Conversation) -> str:
        """The prompt text the model continues for ``conversation``."""
        _, tokenizer = self.load()
        conv = _as_conversation(conversation)
        if self.template is not None:
            from instructkit.templates.formats import get_format

            system = conv[0]["content"] if conv[0]["role"] == "system" else None
            turns = conv[1:] if system is not None else conv
            return get_format(self.template, tokenizer).prompt({"system": system, "messages": turns})
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                f"the tokenizer of {self.path} has no chat template: pass template= "
                "(alpaca, llama2, chatml, vicuna) to LLM.from_transformers"
            )
        return tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)

    def _encode(self, tokenizer: Any, text: str, **kw: Any) -> Any:
        # a rendered prompt that already starts with BOS must not get a second one
        bos = tokenizer.bos_token
        return tokenizer(text, add_special_tokens=not (bos and text.startswith(bos)), **kw)

    def _generate(self, convs: list[list[dict[str, str]]], params: dict[str, Any]) -> Iterator[tuple[int, str]]:
        import torch

        model, tokenizer = self.load()
        prompts = [self.render(c) for c in convs]
        sample = params["temperature"] > 0
        stop = params["stop"]
        # sampling is seeded per prompt, so an answer does not depend on its batch
        size = 1 if sample else self.batch_size
        for start in range(0, len(prompts), size):
            chunk = prompts[start : start + size]
            encoded = [self._encode(tokenizer, p)["input_ids"] for p in chunk]
            width = max(len(e) for e in encoded)
            pad = tokenizer.pad_token_id
            ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=model.device)
            mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=model.device)
            options: dict[str, Any] = {"max_new_tokens": params["max_tokens"], "pad_token_id": pad}
            if sample:
                torch.manual_seed(params["seed"])
                options.update(do_sample=True, temperature=params["temperature"], top_p=params["top_p"])
            else:
                options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, **options)
            for k, row in enumerate(out[:, width:].tolist()):
                self.requests_sent += 1
                text = tokenizer.decode(row, skip_special_tokens=True)
                yield start + k, _cut_at_stop(text, stop)

    def logprobs(self, prompts: Sequence[str], completions: Sequence[str]) -> list[list[float]]:
        """Log-probability (natural log) of each completion token, given the prompt before it.

        The prompt and completion are tokenized as one text (with offsets); the completion's
        tokens are those that start at or after the end of the prompt. An empty prompt scores
        the completion alone, after BOS where the tokenizer has one.
        """
        import torch

        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        model, tokenizer = self.load()
        out: list[list[float]] = []
        for start in range(0, len(prompts), self.batch_size):
            texts = [p + c for p, c in zip(prompts[start : start + self.batch_size],
                                           completions[start : start + self.batch_size], strict=True)]
            firsts = [len(p) for p in prompts[start : start + self.batch_size]]
            rows = [self._encode(tokenizer, t, return_offsets_mapping=True) for t in texts]
            width = max(len(r["input_ids"]) for r in rows)
            pad = tokenizer.pad_token_id
            ids = torch.tensor([r["input_ids"] + [pad] * (width - len(r["input_ids"])) for r in rows], device=model.device)
            mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows], device=model.device)
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            for b, (row, first) in enumerate(zip(rows, firsts, strict=True)):
                values = []
                for t, (s, e) in enumerate(row["offset_mapping"]):
                    if t == 0 or s < first or e <= s:
                        continue  # prompt tokens, BOS and other zero-width specials
                    values.append(float(logp[b, t - 1, row["input_ids"][t]]))
                out.append(values)
        return out


# ------------------------------------------------------------------------------------------
# OpenAI-compatible HTTP servers


class _RateLimiter:
    def __init__(self, per_minute: float | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next)
            self.next = slot + self.interval
        time.sleep(max(0.0, slot - now))


class OpenAILLM(LLM):
    """An OpenAI-compatible chat-completions endpoint. See :meth:`LLM.from_openai`.

    Requests run ``concurrency`` at a time. Connection errors, time-outs, 429 and 5xx answers
    are retried ``max_retries`` times with exponential backoff (``backoff * 2**attempt``
    seconds); other errors (a bad request, a wrong model name) fail at once, naming the server.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 60.0,
        requests_per_minute: float | None = None,
        cache: bool | str | Path | ResponseCache | None = True,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        super().__init__(cache)
        self.base_url, self.model_name = base_url, model
        self.model = f"openai:{base_url.rstrip('/')}:{model}"
        self.api_key, self.concurrency = api_key, concurrency
        self.max_retries, self.backoff, self.timeout = max_retries, backoff, timeout
        self.requests_per_minute = requests_per_minute
        self._limiter = _RateLimiter(requests_per_minute)
        self.retries = 0

    _unpicklable = ("_limiter",)

    def to_config(self) -> dict[str, Any]:
        # an api_key is a secret: recipes name it through OPENAI_API_KEY, never in the file
        return {"openai": {"base_url": self.base_url, "model": self.model_name, "concurrency": self.concurrency,
                           "max_retries": self.max_retries, "backoff": self.backoff, "timeout": self.timeout,
                           "requests_per_minute": self.requests_per_minute}}

    def _reset(self) -> None:
        self._limiter = _RateLimiter(self.requests_per_minute)

    def _client(self) -> Any:
        import os

        try:
            import openai
        except ImportError as e:
            raise ImportError("LLM.from_openai needs the openai client: pip install instructkit[llm]") from e
        key = self.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        return openai.OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout, max_retries=0)

    def _one(self, client: Any, conv: list[dict[str, str]], params: dict[str, Any]) -> str:
        import openai

        transient = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                     openai.InternalServerError)
        for attempt in range(self.max_retries + 1):
            self._limiter.wait()
            try:
                self.requests_sent += 1
                reply = client.chat.completions.create(
                    model=self.model_name, messages=conv, max_tokens=params["max_tokens"],
                    temperature=params["temperature"], top_p=params["top_p"], seed=params["seed"],
                    stop=params["stop"] or None,
                )
            except transient as e:
                if attempt == self.max_retries:
                    raise RuntimeError(
                        f"{self.base_url}: no answer after {self.max_retries + 1} attempts "
                        f"({type(e).__name__}: {e})"
                    ) from e
                self.retries += 1
                time.sleep(self.backoff * 2**attempt)
                continue
            except openai.APIStatusError as e:
                raise RuntimeError(f"{self.base_url} refused the request: {e.status_code} {e.message}") from e
            return reply.choices[0].message.content or ""
        raise AssertionError("unreachable")

    def _generate(self, convs: list[list[dict[str, str]]], params: dict[str, Any]) -> Iterator[tuple[int, str]]:
        client = self._client()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._one, client, c, params): i for i, c in enumerate(convs)}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:
                for future in futures:
                    future.cancel()


# ------------------------------------------------------------------------------------------
# vLLM


class VLLMLLM(LLM):
    """vLLM's offline engine. See :meth:`LLM.from_vllm`."""

    local = True

    def __init__(self, model: str, *, cache: bool | str | Path | ResponseCache | None = True, **engine: Any) -> None:
        super().__init__(cache)
        self.model_path, self.engine_options = model, engine
        self.model = f"vllm:{model}"
        self._engine: Any = None

    _unpicklable = ("_engine",)

    def to_config(self) -> dict[str, Any]:
        return {"vllm": {"model": self.model_path, **self.engine_options}}

    def _reset(self) -> None:
        self._engine = None

    def engine(self) -> Any:
        """The ``vllm.LLM`` engine, started once."""
        if self._engine is None:
            try:
                import vllm
            except ImportError as e:
                raise ImportError("LLM.from_vllm needs vLLM and a GPU: pip install vllm") from e
            self._engine = vllm.LLM(model=self.model_path, **self.engine_options)
        return self._engine

    def _generate(self, convs: list[list[dict[str, str]]], params: dict[str, Any]) -> Iterator[tuple[int, str]]:
        from vllm import SamplingParams

        sampling = SamplingParams(max_tokens=params["max_tokens"], temperature=params["temperature"],
                                  top_p=params["top_p"], seed=params["seed"], stop=params["stop"] or None)
        outputs = self.engine().chat(convs, sampling, use_tqdm=False)
        for i, out in enumerate(outputs):
            self.requests_sent += 1
            yield i, out.outputs[0].text

    def logprobs(self, prompts: Sequence[str], completions: Sequence[str]) -> list[list[float]]:
        """Completion-token log-probabilities from vLLM's prompt log-probabilities."""
        from vllm import SamplingParams

        engine = self.engine()
        tokenizer = engine.get_tokenizer()
        texts = [p + c for p, c in zip(prompts, completions, strict=True)]
        outputs = engine.generate(texts, SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False)
        result = []
        for out, prompt, text in zip(outputs, prompts, texts, strict=True):
            offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
            values = []
            for t, ((s, e), token, entry) in enumerate(zip(offsets, out.prompt_token_ids, out.prompt_logprobs, strict=True)):
                if t == 0 or s < len(prompt) or e <= s or entry is None:
                    continue
                values.append(float(entry[token].logprob))
            result.append(values)
        return result
