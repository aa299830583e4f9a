"""A tiny random Llama and a BPE tokenizer trained offline, for fine-tuning tests.

``build_tiny_llama(path)`` writes a model folder that ``AutoModelForCausalLM`` and
``AutoTokenizer`` load without network: a 2-layer Llama with hidden size 64 (all linear
dimensions multiples of 64 so bitsandbytes 4-bit blocks fit) and a byte-level BPE
tokenizer with a Llama-2 style chat template.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}<|system|>{{ m['content'] }}\n"
    "{% elif m['role'] == 'user' %}<|user|>{{ m['content'] }}\n"
    "{% else %}<|assistant|>{{ m['content'] }}{{ eos_token }}\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

CORPUS = [
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.",
    "### Instruction:\n### Input:\n### Response:\n",
    "[INST] <<SYS>> <</SYS>> [/INST]",
    "What is the colour of the sky? The sky is blue. Name a fruit. An apple is a fruit.",
    "Translate to French: hello. Bonjour. Add two and three. Five. Say yes. Yes.",
    "the quick brown fox jumps over the lazy dog 0 1 2 3 4 5 6 7 8 9",
]


def build_tokenizer(texts: Iterable[str] = CORPUS, vocab_size: int = 384):  # noqa: ANN201
    """A byte-level BPE ``PreTrainedTokenizerFast`` with bos/eos/pad and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts) * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_llama(path: str | Path, seed: int = 0) -> Path:
    """Save a random 2-layer Llama plus its tokenizer under ``path``; returns the path."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


SP_CORPUS = [
    *CORPUS,
    "Making a cake is easy. The sky is blue. Hello there, how are you? You are a helpful "
    "assistant. Answer briefly. Tell me a joke. Why did the chicken cross the road?",
    "USER: ASSISTANT: A chat between a curious user and an artificial intelligence assistant.",
    "<|im_start|>system <|im_start|>user <|im_start|>assistant <|im_end|>",
]
SP_SPECIALS = ["<unk>", "<s>", "</s>"]


def build_sentencepiece_tokenizer(kind: str = "hub", texts: Iterable[str] = SP_CORPUS,
                                  vocab_size: int = 420):  # noqa: ANN201
    """A Llama-2 style SentencePiece BPE tokenizer, built offline, in one of three layouts.

    The vocabulary is laid out as Llama-2's: ``<unk> <s> </s>`` (ids 0-2), the 256 byte
    fallback pieces ``<0x00>``..``<0xFF>`` (3-258), then pieces learned on ``texts`` with
    merges that never cross a word start (``▁``), as sentencepiece's BPE.

    - ``"hub"``: the Hub ``tokenizer.json`` of Llama-2: a ``Prepend("▁")`` + ``Replace(" ",
      "▁")`` normalizer and no pre-tokenizer, so every piece of text between special
      tokens gets a ``▁`` prefix, even when it starts with a space (the stray ``▁`` piece
      of transformers#26273); wrapped in ``LlamaTokenizerFast`` with ``tokenizer_object``.
    - ``"legacy"``: ``LlamaTokenizerFast(vocab, merges, legacy=True)``: a ``Metaspace``
      pre-tokenizer prepending ``▁`` to every piece between special tokens.
    - ``"nonlegacy"``: ``legacy=False``: ``▁`` only at the very start of the text.
    """
    import json

    from tokenizers import (
        AddedToken,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import LlamaTokenizerFast

    learner = Tokenizer(models.BPE(unk_token="<unk>"))
    learner.normalizer = normalizers.Replace(" ", "▁")
    learner.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SP_SPECIALS, show_progress=False)
    learner.train_from_iterator(list(texts) * 4, trainer=trainer)
    learned = json.loads(learner.to_str())["model"]
    vocab = {s: i for i, s in enumerate(SP_SPECIALS)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece in learned["vocab"]:
        vocab.setdefault(piece, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]]
    names = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    if kind in ("legacy", "nonlegacy"):
        return LlamaTokenizerFast(vocab=vocab, merges=merges, legacy=kind == "legacy",
                                  add_bos_token=True, **names)
    if kind != "hub":
        raise ValueError(f"kind must be hub, legacy or nonlegacy, got {kind!r}")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True,
                               fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in SP_SPECIALS])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return LlamaTokenizerFast(tokenizer_object=tok, **names)


GENERATION_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}<|system|>{{ m['content'] }}\n"
    "{% elif m['role'] == 'user' %}<|user|>{{ m['content'] }}\n"
    "{% else %}<|assistant|>{% generation %}{{ m['content'] }}{{ eos_token }}{% endgeneration %}\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def slow_wrapper(fast):  # noqa: ANN001, ANN201
    """A Python ("slow") tokenizer with the same pieces as ``fast`` but no offsets: its
    ``_tokenize`` runs the Rust model on each piece of text between special tokens, and
    ``tokenizer(text)`` prepends BOS as Llama's slow tokenizer does."""
    from transformers import PreTrainedTokenizer

    backend = fast.backend_tokenizer
    vocab = fast.get_vocab()
    inverse = {i: t for t, i in vocab.items()}

    class SlowTokenizer(PreTrainedTokenizer):
        def __init__(self, **kwargs) -> None:  # noqa: ANN003
            super().__init__(**kwargs)

        @property
        def vocab_size(self) -> int:
            return len(vocab)

        def get_vocab(self) -> dict[str, int]:
            return dict(vocab)

        def _tokenize(self, text: str, **kwargs) -> list[str]:  # noqa: ANN003
            return backend.encode(text, add_special_tokens=False).tokens

        def _convert_token_to_id(self, token: str) -> int:
            return vocab.get(token, vocab.get("<unk>", 0))

        def _convert_id_to_token(self, index: int) -> str:
            return inverse[index]

        def build_inputs_with_special_tokens(self, a: list[int], b: list[int] | None = None) -> list[int]:
            # BOS in front, as LlamaTokenizer and the fast tokenizer's post-processor
            return [self.bos_token_id, *a] + ([self.bos_token_id, *b] if b is not None else [])

        def convert_tokens_to_string(self, tokens: list[str]) -> str:
            return backend.decode([vocab[t] for t in tokens], skip_special_tokens=False)

    slow = SlowTokenizer(bos_token=fast.bos_token, eos_token=fast.eos_token,
                         unk_token=fast.unk_token, pad_token=fast.pad_token)
    slow.chat_template = fast.chat_template
    return slow
