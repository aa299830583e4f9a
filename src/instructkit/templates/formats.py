"""Prompt formats: render records to training text, split into prompt and response pieces.

A format turns one record (single-turn ``instruction``/``input``/``output``/``system``, or
multi-turn ``messages`` + ``system``) into :meth:`PromptFormat.segments`: consecutive pieces
of text, each flagged ``True`` when it is response text that training should learn (an
assistant turn plus the closing token the format puts after it) and ``False`` for prompt
text. Joining the pieces gives the full training text, so a trainer can mask the prompt by
tokenizing piece by piece (or by character offsets).

Built-in formats, each written from its public reference:

- ``alpaca``: the Stanford Alpaca / Code Alpaca ``PROMPT_DICT`` strings (``train.py``);
  the response is ``output + eos`` exactly as their ``SupervisedDataset`` builds it.
- ``llama2``: Meta's ``llama/generation.py`` ``chat_completion``:
  ``<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {assistant} </s>`` per exchange.
- ``chatml``: OpenAI's ChatML (``<|im_start|>{role}\\n{content}<|im_end|>\\n``).
- ``vicuna``: FastChat's ``vicuna_v1.1`` conversation template (``ADD_COLON_TWO``).
- ``chat_template``: a Hugging Face tokenizer's own ``chat_template``.
- a path to a text-generation-webui training format JSON (``"instruction,output": "...%instruction%..."``).

Single-turn records are one user turn (``instruction``, then ``"\\n\\n" + input`` when there
is an input) and one assistant turn (``output``) in the chat formats.

Example:
    >>> fmt = get_format("llama2")
    >>> fmt.segments({"instruction": "Hi", "output": "Hello"})
    [('<s>[INST] Hi [/INST]', False), (' Hello </s>', True)]
    >>> fmt.prompt({"instruction": "Hi"})
    '<s>[INST] Hi [/INST]'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

Segments = list[tuple[str, bool]]
Turn = tuple[str, str]  # (role, content)

#: Stanford Alpaca ``PROMPT_DICT`` (tatsu-lab/stanford_alpaca train.py; identical in
#: sahil280114/codealpaca train.py), byte for byte.
ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)
#: The EOS string Stanford Alpaca trains with on LLaMA (``DEFAULT_EOS_TOKEN``).
LLAMA_EOS = "</s>"
LLAMA_BOS = "<s>"

#: FastChat ``vicuna_v1.1`` default system message.
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


class FormatError(ValueError):
    """A record that a prompt format cannot render; the message names the record and why."""


def _record_name(record: Mapping[str, Any]) -> str:
    rid = record.get("id")
    return f"record {rid!r}" if rid is not None else "record"


def user_text(instruction: str | None, input: str | None) -> str:
    """The single user turn a chat format sees for an instruction and its optional input.

    Example:
        >>> user_text("Translate to French.", "cat")
        'Translate to French.\\n\\ncat'
    """
    instruction = instruction or ""
    return f"{instruction}\n\n{input}" if input else instruction


def conversation(record: Mapping[str, Any]) -> tuple[str | None, list[Turn]]:
    """``(system, [(role, content), ...])`` of a record, single-turn or multi-turn.

    Example:
        >>> conversation({"instruction": "Hi", "input": "", "output": "Hello", "system": None})
        (None, [('user', 'Hi'), ('assistant', 'Hello')])
    """
    system = record.get("system") or None
    messages = record.get("messages")
    if messages:
        turns = []
        for m in messages:
            if m.get("role") == "system":
                # a system turn inside messages (from raw dicts) joins the system prompt
                system = m["content"] if system is None else f"{system}\n\n{m['content']}"
                continue
            turns.append((m["role"], m.get("content") or ""))
        return system, turns
    turns = [("user", user_text(record.get("instruction"), record.get("input")))]
    output = record.get("output")
    if output:
        turns.append(("assistant", output))
    return system, turns


def _merge(segments: Segments) -> Segments:
    """Join neighbouring pieces with the same flag and drop empty ones."""
    out: Segments = []
    for text, train in segments:
        if not text:
            continue
        if out and out[-1][1] == train:
            out[-1] = (out[-1][0] + text, train)
        else:
            out.append((text, train))
    return out


class PromptFormat:
    """Base of all prompt formats.

    Subclasses implement :meth:`_segments` for ``(system, turns)``. ``stop`` lists strings a
    generator should stop at.
    """

    name: str = ""
    stop: tuple[str, ...] = ()

    def _segments(
        self, system: str | None, turns: list[Turn], generation: bool, record: Mapping[str, Any]
    ) -> Segments:
        raise TypeError(f"{type(self).__name__} must implement _segments")

    def segments(self, record: Mapping[str, Any]) -> Segments:
        """The training text as ``(text, is_response)`` pieces; joined, they give :meth:`render`.

        Example:
            >>> get_format("chatml").segments({"instruction": "Hi", "output": "Yo"})[-2:]
            [('Yo<|im_end|>', True), ('\\n', False)]
        """
        system, turns = conversation(record)
        return _merge(self._segments(system, turns, False, record))

    def render(self, record: Mapping[str, Any]) -> str:
        """The full training text of one record.

        Example:
            >>> get_format("llama2").render({"instruction": "Hi", "output": "Hello"})
            '<s>[INST] Hi [/INST] Hello </s>'
        """
        return "".join(text for text, _ in self.segments(record))

    def prompt(self, record: Mapping[str, Any]) -> str:
        """The text a model should continue to produce the record's (last) reply.

        A final assistant turn, if any, is left out: the prompt ends where it would start.

        Example:
            >>> get_format("vicuna").prompt({"instruction": "Hi", "output": "Hello"}).endswith(
            ...     "USER: Hi ASSISTANT:")
            True
        """
        system, turns = conversation(record)
        if turns and turns[-1][0] == "assistant":
            turns = turns[:-1]
        return "".join(text for text, _ in self._segments(system, turns, True, record))

    def split(self, record: Mapping[str, Any]) -> tuple[str, str]:
        """``(prompt, response)`` of a record whose conversation ends with an assistant reply:
        everything before the last response piece, and that piece.

        Example:
            >>> get_format("llama2").split({"instruction": "Hi", "output": "Hello"})
            ('<s>[INST] Hi [/INST]', ' Hello </s>')
        """
        segs = self.segments(record)
        last = max((i for i, (_, train) in enumerate(segs) if train), default=None)
        if last is None:
            raise FormatError(f"{_record_name(record)} has no response to split off")
        return "".join(t for t, _ in segs[:last]), "".join(t for t, _ in segs[last:])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _single_turn(fmt: str, system: str | None, turns: list[Turn], record: Mapping[str, Any]) -> None:
    roles = [r for r, _ in turns]
    if roles not in (["user"], ["user", "assistant"]):
        raise FormatError(
            f"{_record_name(record)}: the {fmt!r} format is single-turn but the record has "
            f"turns {roles}; convert it first (e.g. ds.write(..., format='alpaca', turns='split')) "
            "or use a chat format (llama2, chatml, vicuna, chat_template)"
        )


class AlpacaFormat(PromptFormat):
    """Stanford Alpaca: ``PROMPT_DICT[prompt_input | prompt_no_input]`` then ``output + eos``.

    The input variant is used when ``input`` is non-empty, as in Stanford's ``train.py``.
    ``eos`` defaults to the tokenizer's ``eos_token``, else LLaMA's ``</s>`` (Stanford's
    ``DEFAULT_EOS_TOKEN``); pass ``eos=""`` for none. A ``system`` prompt, when present,
    replaces the "Below is an instruction..." preamble's place at the top (followed by a
    blank line), since Alpaca itself has no system slot.

    Example:
        >>> AlpacaFormat(eos="").render({"instruction": "Add 2 and 3.", "output": "5"}).endswith(
        ...     "### Instruction:\\nAdd 2 and 3.\\n\\n### Response:5")
        True
    """

    name = "alpaca"
    stop = ("### Instruction:",)

    def __init__(self, eos: str | None = None, tokenizer: Any = None) -> None:
        if eos is None:
            eos = getattr(tokenizer, "eos_token", None) if tokenizer is not None else LLAMA_EOS
            if eos is None:
                raise FormatError("the tokenizer has no eos_token; pass eos= to the alpaca format")
        self.eos = eos
        self.stop = (*type(self).stop, eos) if eos else type(self).stop

    def segments(self, record: Mapping[str, Any]) -> Segments:
        if record.get("messages"):
            system, turns = conversation(record)
            _single_turn("alpaca", system, turns, record)
        return _merge(self._alpaca(record, generation=False))

    def prompt(self, record: Mapping[str, Any]) -> str:
        if record.get("messages"):
            system, turns = conversation(record)
            _single_turn("alpaca", system, turns, record)
        return "".join(t for t, _ in self._alpaca(record, generation=True))

    def _alpaca(self, record: Mapping[str, Any], generation: bool) -> Segments:
        if record.get("messages"):
            system, turns = conversation(record)
            instruction, input = turns[0][1], ""
            output = turns[1][1] if len(turns) > 1 else ""
        else:
            system = record.get("system") or None
            instruction = record.get("instruction") or ""
            input = record.get("input") or ""
            output = record.get("output") or ""
        if input:
            prompt = ALPACA_PROMPT_INPUT.format_map({"instruction": instruction, "input": input})
        else:
            prompt = ALPACA_PROMPT_NO_INPUT.format_map({"instruction": instruction})
        if system:
            prompt = f"{system}\n\n{prompt}"
        if generation:
            return [(prompt, False)]
        return [(prompt, False), (output + self.eos, True)]


class Llama2Format(PromptFormat):
    """Llama-2 chat, as Meta's ``chat_completion`` builds it.

    Each exchange is ``<s>[INST] {user} [/INST] {assistant} </s>``, contents stripped; the
    system prompt goes inside the first ``[INST]`` as ``<<SYS>>\\n{system}\\n<</SYS>>\\n\\n``.
    Turns must alternate user, assistant, user, ...

    Example:
        >>> Llama2Format().render({"instruction": "Hi", "output": "Hello", "system": "Be brief."})
        '<s>[INST] <<SYS>>\\nBe brief.\\n<</SYS>>\\n\\nHi [/INST] Hello </s>'
    """

    name = "llama2"
    stop = (LLAMA_EOS,)

    def _segments(
        self, system: str | None, turns: list[Turn], generation: bool, record: Mapping[str, Any]
    ) -> Segments:
        out: Segments = []
        for i, (role, content) in enumerate(turns):
            expected = "user" if i % 2 == 0 else "assistant"
            if role != expected:
                raise FormatError(
                    f"{_record_name(record)}: llama2 needs turns alternating user/assistant "
                    f"starting with user; turn {i} is {role!r}"
                )
            if role == "user":
                if i == 0 and system:
                    content = f"<<SYS>>\n{system}\n<</SYS>>\n\n{content}"
                out.append((f"{LLAMA_BOS}[INST] {content.strip()} [/INST]", False))
            else:
                out.append((f" {content.strip()} {LLAMA_EOS}", True))
        return out


class ChatMLFormat(PromptFormat):
    """ChatML: ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per turn, system first.

    The trained piece of an assistant turn is its content and ``<|im_end|>``; the header
    ``<|im_start|>assistant\\n`` and the newline after ``<|im_end|>`` are prompt.

    Example:
        >>> ChatMLFormat().render({"instruction": "Hi", "output": "Yo"})
        '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\nYo<|im_end|>\\n'
    """

    name = "chatml"
    stop = ("<|im_end|>",)

    def _segments(
        self, system: str | None, turns: list[Turn], generation: bool, record: Mapping[str, Any]
    ) -> Segments:
        out: Segments = []
        if system:
            out.append((f"<|im_start|>system\n{system}<|im_end|>\n", False))
        for role, content in turns:
            if role == "assistant":
                out += [("<|im_start|>assistant\n", False), (f"{content}<|im_end|>", True), ("\n", False)]
            else:
                out.append((f"<|im_start|>{role}\n{content}<|im_end|>\n", False))
        if generation:
            out.append(("<|im_start|>assistant\n", False))
        return out


class VicunaFormat(PromptFormat):
    """Vicuna v1.1 (FastChat ``vicuna_v1.1``): ``{system} USER: {u} ASSISTANT: {a}</s>``.

    The default system message is FastChat's; a record's own ``system`` replaces it.

    Example:
        >>> VicunaFormat().render({"instruction": "Hi", "output": "Hello", "system": "S."})
        'S. USER: Hi ASSISTANT: Hello</s>'
    """

    name = "vicuna"
    stop = (LLAMA_EOS,)

    def _segments(
        self, system: str | None, turns: list[Turn], generation: bool, record: Mapping[str, Any]
    ) -> Segments:
        system = VICUNA_SYSTEM if system is None else system
        out: Segments = [(f"{system} ", False)] if system else []
        for i, (role, content) in enumerate(turns):
            if role not in ("user", "assistant"):
                raise FormatError(
                    f"{_record_name(record)}: vicuna has only USER and ASSISTANT roles; turn {i} is {role!r}"
                )
            if role == "user":
                out.append((f"USER: {content} ", False))
            else:
                out += [("ASSISTANT:", False), (f" {content}{LLAMA_EOS}", True)]
        if generation:
            out.append(("ASSISTANT:", False))
        return out


class ChatTemplateFormat(PromptFormat):
    """A Hugging Face tokenizer's ``chat_template``, through ``apply_chat_template``.

    Prompt and response are told apart by rendering incrementally: the text the template adds
    between ``messages[:i]`` + generation prompt and ``messages[:i+1]`` is assistant turn
    ``i`` (with whatever closing tokens the template puts after it). Templates that rewrite
    earlier turns when later ones are added cannot be split this way and raise an error.

    Example:
        >>> fmt = ChatTemplateFormat(tokenizer)   # doctest: +SKIP
        >>> fmt.segments({"instruction": "Hi", "output": "Hello"})  # doctest: +SKIP
    """

    name = "chat_template"

    def __init__(self, tokenizer: Any) -> None:
        if tokenizer is None or not hasattr(tokenizer, "apply_chat_template"):
            raise FormatError("the 'chat_template' format needs a Hugging Face tokenizer (tokenizer=...)")
        if not getattr(tokenizer, "chat_template", None):
            raise FormatError(
                f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat_template; "
                "pick a named format (alpaca, llama2, chatml, vicuna)"
            )
        self.tokenizer = tokenizer
        eos = getattr(tokenizer, "eos_token", None)
        self.stop = (eos,) if eos else ()

    def _apply(self, messages: list[dict[str, str]], generation: bool, record: Mapping[str, Any]) -> str:
        try:
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=generation
            )
        except Exception as e:  # template errors (e.g. a role it refuses) name the record
            raise FormatError(f"{_record_name(record)}: chat_template failed: {e}") from e
        if not isinstance(text, str):
            raise FormatError(f"apply_chat_template returned {type(text).__name__}, expected text")
        return text

    def _segments(
        self, system: str | None, turns: list[Turn], generation: bool, record: Mapping[str, Any]
    ) -> Segments:
        head = [{"role": "system", "content": system}] if system else []
        messages = head + [{"role": r, "content": c} for r, c in turns]
        full = self._apply(messages, generation, record)
        out: Segments = []
        pos = 0
        for i, (role, _) in enumerate(turns):
            if role != "assistant":
                continue
            before = self._apply(messages[: len(head) + i], True, record)
            after = self._apply(messages[: len(head) + i + 1], False, record)
            if not (after.startswith(before) and before.startswith(full[:pos]) and full.startswith(after)):
                raise FormatError(
                    f"{_record_name(record)}: the tokenizer's chat_template does not render "
                    "conversations incrementally (an earlier turn changes when a later one is "
                    "added), so prompt and response cannot be split; use a named format"
                )
            out += [(before[pos:], False), (after[len(before) :], True)]
            pos = len(after)
        out.append((full[pos:], False))
        return out


class WebUIFormat(PromptFormat):
    """A text-generation-webui training format: JSON mapping field sets to templates.

    Keys are comma-separated field names (``"instruction,output"``,
    ``"instruction,input,output"``); the key whose set equals the record's non-empty fields
    is used, as webui's ``generate_prompt`` does. Placeholders are ``%field%``. The text up
    to ``%output%`` is prompt; the output, the template text after it, and ``eos`` (the
    tokenizer's ``eos_token`` when a tokenizer is given, else none) are response.

    Example:
        >>> fmt = WebUIFormat({"instruction,output": "Q: %instruction%\\nA: %output%"}, name="qa")
        >>> fmt.segments({"instruction": "Hi", "output": "Yo"})
        [('Q: Hi\\nA: ', False), ('Yo', True)]
    """

    def __init__(
        self, templates: Mapping[str, str], name: str = "webui", eos: str | None = None, tokenizer: Any = None
    ) -> None:
        if not templates or not all(isinstance(v, str) for v in templates.values()):
            raise FormatError(f"format {name!r}: expected a JSON object of field sets to template strings")
        self.templates = {frozenset(k.replace(" ", "").split(",")): v for k, v in templates.items()}
        for keys, text in self.templates.items():
            if "output" in keys and text.count("%output%") != 1:
                raise FormatError(f"format {name!r}: template for {sorted(keys)} must contain %output% once")
        self.fields = frozenset().union(*self.templates)
        self.name = name
        if eos is None:
            eos = (getattr(tokenizer, "eos_token", None) or "") if tokenizer is not None else ""
        self.eos = eos
        self.stop = (eos,) if eos else ()

    @classmethod
    def from_file(cls, path: str | Path, eos: str | None = None, tokenizer: Any = None) -> WebUIFormat:
        """Load a webui format JSON file (``training/formats/alpaca-format.json`` style)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise FormatError(f"{path}: not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise FormatError(f"{path}: expected a JSON object mapping field sets to templates")
        return cls(data, name=path.stem, eos=eos, tokenizer=tokenizer)

    def _values(self, record: Mapping[str, Any]) -> dict[str, str]:
        if record.get("messages"):
            system, turns = conversation(record)
            _single_turn(self.name, system, turns, record)
            values = {"instruction": turns[0][1], "input": "", "output": turns[1][1] if len(turns) > 1 else ""}
            values["system"] = system or ""
        else:
            values = {k: record.get(k) or "" for k in ("instruction", "input", "output", "system")}
        for k in self.fields - set(values):
            value = record.get(k)
            values[k] = value if isinstance(value, str) else ""
        return values

    def _pick(self, values: Mapping[str, str], record: Mapping[str, Any], need_output: bool) -> str:
        present = {k for k in self.fields if values.get(k, "").strip()}
        if need_output:
            present.add("output")
        template = self.templates.get(frozenset(present))
        if template is None:
            raise FormatError(
                f"{_record_name(record)}: format {self.name!r} has no template for fields "
                f"{sorted(present)}; its keys are {sorted(','.join(sorted(k)) for k in self.templates)}"
            )
        return template

    def _fill(self, text: str, values: Mapping[str, str]) -> str:
        for key, value in values.items():
            text = text.replace(f"%{key}%", value)
        return text

    def segments(self, record: Mapping[str, Any]) -> Segments:
        values = self._values(record)
        template = self._pick(values, record, need_output=False)
        if "%output%" not in template:
            return _merge([(self._fill(template, values), False)])
        head, tail = template.split("%output%")
        response = values["output"] + self._fill(tail, values) + self.eos
        return _merge([(self._fill(head, values), False), (response, True)])

    def prompt(self, record: Mapping[str, Any]) -> str:
        values = self._values(record)
        template = self._pick(values, record, need_output=True)
        return self._fill(template.split("%output%")[0], values)


_NAMED: dict[str, type[PromptFormat]] = {
    "alpaca": AlpacaFormat,
    "llama2": Llama2Format,
    "chatml": ChatMLFormat,
    "vicuna": VicunaFormat,
}

#: Names :func:`get_format` accepts (besides a path to a webui format JSON).
FORMAT_NAMES: tuple[str, ...] = (*_NAMED, "chat_template")


def get_format(
    name_or_path: str | PromptFormat, tokenizer: Any = None, *, eos: str | None = None
) -> PromptFormat:
    """A prompt format by name (``alpaca``, ``llama2``, ``chatml``, ``vicuna``,
    ``chat_template``) or by path to a text-generation-webui format JSON.

    ``tokenizer`` is needed for ``chat_template`` and gives ``alpaca`` and webui formats their
    EOS string; ``eos`` overrides that string.

    Example:
        >>> get_format("alpaca", eos="").split({"instruction": "Hi", "output": "Hello"})[1]
        'Hello'
    """
    if isinstance(name_or_path, PromptFormat):
        return name_or_path
    if name_or_path == "alpaca":
        return AlpacaFormat(eos=eos, tokenizer=tokenizer)
    if name_or_path in _NAMED:
        return _NAMED[name_or_path]()
    if name_or_path == "chat_template":
        return ChatTemplateFormat(tokenizer)
    path = Path(name_or_path)
    if path.suffix == ".json":
        if not path.is_file():
            raise FileNotFoundError(f"prompt format file {path} does not exist")
        return WebUIFormat.from_file(path, eos=eos, tokenizer=tokenizer)
    raise ValueError(
        f"unknown prompt format {name_or_path!r}; use one of {list(FORMAT_NAMES)} or the path "
        "to a text-generation-webui format .json"
    )


_RENDER_COLUMNS = ("id", "instruction", "input", "output", "system", "messages")


def with_default_system(frame: pl.DataFrame, system: str | None) -> pl.DataFrame:
    """``frame`` with ``system`` as the system prompt of the records that have none (null or
    empty); ``None`` changes nothing.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "a"}, {"instruction": "b", "system": "Own."}])
        >>> with_default_system(ds.to_polars(), "Be brief.")["system"].to_list()
        ['Be brief.', 'Own.']
    """
    if system is None:
        return frame
    if not isinstance(system, str):
        raise TypeError(f"system= takes the text of a system prompt, got {type(system).__name__}")
    own = pl.col("system")
    return frame.with_columns(
        pl.when(own.is_null() | (own == "")).then(pl.lit(system)).otherwise(own).alias("system")
    )


def render_column(
    dataset: Dataset | pl.DataFrame, template: str | PromptFormat, tokenizer: Any = None,
    system: str | None = None,
) -> pl.Series:
    """The rendered training text of every record, as a String Series named ``text``.

    ``system`` is the system prompt of records that have none.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "Hi", "output": "Hello"}])
        >>> render_column(ds, "chatml")[0]
        '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\nHello<|im_end|>\\n'
        >>> render_column(ds, "llama2", system="Be brief.")[0]
        '<s>[INST] <<SYS>>\\nBe brief.\\n<</SYS>>\\n\\nHi [/INST] Hello </s>'
    """
    fmt = get_format(template, tokenizer)
    frame = dataset if isinstance(dataset, pl.DataFrame) else dataset.to_polars()
    frame = with_default_system(frame, system)
    cols = [c for c in _RENDER_COLUMNS if c in frame.columns]
    texts = [fmt.render(row) for row in frame.select(cols).iter_rows(named=True)]
    return pl.Series("text", texts, dtype=pl.String)


def render_segments(
    records: Sequence[Mapping[str, Any]], template: str | PromptFormat, tokenizer: Any = None
) -> list[Segments]:
    """:meth:`PromptFormat.segments` for many records (what a trainer tokenizes).

    Example:
        >>> render_segments([{"instruction": "Hi", "output": "Yo"}], "llama2")
        [[('<s>[INST] Hi [/INST]', False), (' Yo </s>', True)]]
    """
    fmt = get_format(template, tokenizer)
    return [fmt.segments(r) for r in records]
