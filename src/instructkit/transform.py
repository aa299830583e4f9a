"""The one protocol every transform speaks.

A transform is a small object with explicit parameters in ``__init__`` (so it has a repr and
can be saved in a recipe), a ``name``, a ``kind`` and ``apply(frame) -> frame``. ``apply``
returns the frame with the same rows; to drop a row it fills the :data:`REASON` column (and
optionally :data:`DETAIL`) for it. The base class turns that into the removed log, counts
and timings, so a transform writes only its own logic.

Three kinds tell executors how a step may be split:

- :class:`Map`: row by row or batch by batch, adds or changes columns.
- :class:`Filter`: batch by batch, returns a reason (null = keep) per row.
- :class:`Global`: needs the whole dataset, or compact state built over it (dedup,
  decontamination). It must keep hashes or signatures, never the texts.

Example:
    >>> import polars as pl
    >>> import instructkit as ik
    >>> class ShortOutput(ik.Filter):
    ...     name = "short_output"
    ...     def __init__(self, min_chars: int = 5):
    ...         self.min_chars = min_chars
    ...     def reasons(self, frame):
    ...         return pl.when(pl.col("output").str.len_chars() < self.min_chars).then(
    ...             pl.lit("too_short"))
    >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": "ok"}])
    >>> len(ds.pipe(ShortOutput()))
    0
"""

from __future__ import annotations

import inspect
import json
import os
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import polars as pl

from instructkit._progress import progress, quiet

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

#: Column a step fills with a snake_case reason to drop a row (null keeps it).
REASON = "_ik_reason"
#: Column a step may fill with the detail of a dropped row: a JSON object (see :func:`detail`),
#: never personal data.
DETAIL = "_ik_detail"

Kind = Literal["map", "filter", "global"]

#: Fewest rows in a slice cut only so that progress moves (see ``Transform._slice_rows``).
MIN_PROGRESS_SLICE = 2_000

_REGISTRY: dict[str, type[Transform]] = {}


class Transform:
    """Base of every transform. Subclasses set ``name`` and ``kind`` and implement ``apply``.

    ``__call__(dataset)`` runs the step on a :class:`~instructkit.Dataset`, moves the rows
    it dropped to ``dataset.removed`` and appends a line to ``dataset.history``.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[Kind] = "map"
    #: True for steps that replace personal data (``pii.scrub``). Executors never write a
    #: batch to disk (spills, shards) before it has passed every redacting step of the pipeline.
    redacts: ClassVar[bool] = False
    #: Parameters that hold secrets, each with the environment variable a recipe names in
    #: its place (``{"salt": "IK_PII_SALT"}``): ``to_config``/``to_yaml`` write the reference
    #: ``${env:IK_PII_SALT}``, never the value, and ``repr`` shows ``'***'``.
    secrets: ClassVar[Mapping[str, str]] = {}
    #: Map and Filter steps run in slices of this many rows, and Global steps observe in such
    #: slices (deciding once over all of them), so a progress bar can move.
    batch_size: ClassVar[int] = 50_000
    #: Parameters that change only the final verdict (a Global step's ``decide``, a Filter's
    #: ``verdict``), not what is computed per record: ``ik.sweep`` over one of them reuses
    #: the computed state.
    decide_params: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name and not inspect.isabstract(cls):
            _REGISTRY[cls.name] = cls

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Return ``frame`` with the same rows, changed, and with :data:`REASON` set on drops."""
        raise TypeError(f"{type(self).__name__} must implement apply(frame)")

    # hooks executors call (all optional; the defaults do nothing) -------------------------
    def prepare(self) -> None:
        """Load what the step needs from disk, once, before it sees a record.

        Every path calls it on the driver before the first batch: ``ds.pipe`` (through
        ``__call__``), the local and the Ray executor. A step reads its files here, through
        ``ik.read`` (``against=`` of the dedup steps, benchmark files), never on a worker.
        It must be idempotent (a cache on the instance); the default does nothing.
        """

    @classmethod
    def preload(cls) -> None:
        """Load, once per process, what the step's batches need whatever its parameters
        (compiled kernels, a packaged model), so worker processes start with it loaded.

        The local executor forks its workers from one server process (the ``forkserver``
        start method, where the OS has it) that calls this for every step class of the run
        before the first worker starts; numba alone costs each process about 0.7 s of CPU
        to load. It runs in a process that forks, so it must leave that process with one
        thread: no threads of its own and no polars operation (which starts polars' thread
        pool, unusable in a forked child). Results never depend on it; the default does
        nothing.

        Example:
            >>> import instructkit as ik
            >>> ik.dedup.minhash.preload()  # numba is started in this process
        """

    def shared_state(self) -> Any:
        """State built once on the driver and shipped to every worker (None: nothing).

        A parallel executor calls it after :meth:`prepare`, puts the result in its object
        store once per pass and hands it to the worker's copy of the step with
        :meth:`attach_shared_state` (for example decontamination's n-gram index, so no
        worker builds it again). In one process nothing is shipped and the step uses its
        own cache.
        """
        return None

    def attach_shared_state(self, state: Any) -> None:
        """Install on a worker's copy of the step what :meth:`shared_state` built.

        Called at most once per worker and pass, only with a state that is not None.
        """
        raise TypeError(f"{type(self).__name__}.shared_state() returned state but the step has no attach_shared_state")

    def __call__(self, dataset: Dataset) -> Dataset:
        self.prepare()
        start = time.perf_counter()
        frame = dataset.to_polars()
        size = self._slice_rows(len(frame))
        if self.kind in ("map", "filter") and len(frame) > size:
            parts = [
                self.apply(frame.slice(offset, size))
                for offset in progress(
                    range(0, len(frame), size), total=-(-len(frame) // size), desc=self.name, unit="batch"
                )
            ]
            out = pl.concat(parts, how="diagonal_relaxed")
        elif self.kind == "global" and len(frame) > size:
            # observe in slices, as the executors do, so a long dedup or decontamination
            # shows progress; decide still sees every slice's state at once
            states = [
                self.observe(frame.slice(offset, size))
                for offset in progress(
                    range(0, len(frame), size), total=-(-len(frame) // size),
                    desc=f"observe {self.name}", unit="batch",
                )
            ]
            out = self.apply_decision(frame, self.decide(states))
        else:
            out = self.apply(frame)
        if len(out) != len(frame):
            raise RuntimeError(
                f"step {self.name!r} returned {len(out)} rows for {len(frame)}: a step must "
                f"keep every row and mark drops in the {REASON!r} column"
            )
        return dataset._advance(self, out, time.perf_counter() - start)

    def _slice_rows(self, n: int) -> int:
        """Rows per slice of the in-memory path: ``batch_size``; while progress is shown, also
        about a twentieth of the data (at least ``MIN_PROGRESS_SLICE`` rows), so a step of a
        few seconds moves its bar too. Slicing never changes a result: steps give the same
        output for any batching, which the conformance test checks on every step."""
        if quiet() or n <= MIN_PROGRESS_SLICE:
            return self.batch_size
        return min(self.batch_size, max(MIN_PROGRESS_SLICE, -(-n // 20)))

    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` parameters and their current values, as scikit-learn does."""
        sig = inspect.signature(type(self).__init__)
        return {
            p: getattr(self, p)
            for p in sig.parameters
            if p != "self"
            and sig.parameters[p].kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            and hasattr(self, p)
        }

    def to_config(self) -> dict[str, Any]:
        """``{name: params}``, the form a step takes in a YAML recipe (defaults left out)."""
        sig = inspect.signature(type(self).__init__)
        params = {
            k: _plain(v)
            for k, v in self.get_params().items()
            if sig.parameters[k].default is inspect.Parameter.empty
            or _plain(v) != _plain(sig.parameters[k].default)
        }
        for k, var in self.secrets.items():
            if params.get(k) is not None and not is_secret_ref(params[k]):
                params[k] = secret_ref(var)
        return {self.name: params}

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        shown = [
            f"{k}={_masked(v) if k in self.secrets else repr(v)}"
            for k, v in self.get_params().items()
            if sig.parameters[k].default is inspect.Parameter.empty
            or v != sig.parameters[k].default
        ]
        return f"{type(self).__name__}({', '.join(shown)})"


class Map(Transform):
    """A step that changes or adds columns, row by row or batch by batch."""

    kind: ClassVar[Kind] = "map"


class Filter(Transform):
    """A step that keeps or drops each row on its own. Implement :meth:`reasons`."""

    kind: ClassVar[Kind] = "filter"

    def reasons(self, frame: pl.DataFrame) -> pl.Expr | pl.Series | pl.DataFrame:
        """A reason per row (null = keep), as an expression, a Series, or a frame with
        ``reason`` and ``detail`` columns."""
        raise TypeError(f"{type(self).__name__} must implement reasons(frame)")

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        verdict = self.reasons(frame)
        return mark(frame, verdict)

    # optional: a threshold sweep (``ik.sweep``) reuses an expensive prediction -----------
    def predict(self, frame: pl.DataFrame) -> pl.DataFrame | None:
        """What the step computes before its thresholds apply (langid: language and score
        per row), or None when it has no such split (the default).

        A step that returns a frame here implements :meth:`verdict`, and ``reasons`` must
        equal ``verdict(predict(frame))``; ``ik.sweep`` over one of its ``decide_params``
        then predicts once and calls :meth:`verdict` per value.
        """
        return None

    def verdict(self, predictions: pl.DataFrame) -> pl.Expr | pl.Series | pl.DataFrame:
        """Reasons per row (as :meth:`reasons` returns them) from :meth:`predict`'s frame."""
        raise TypeError(f"{type(self).__name__} has no verdict(predictions): its predict() returns None")


class Global(Transform):
    """A step that needs the whole dataset (dedup, decontamination).

    It works in two phases so executors can run it out of core or on a cluster:

    - :meth:`observe` turns one batch into compact state (hashes, signatures, index hits,
      row ids), never the texts. Batches are observed in input order.
    - :meth:`decide` takes every batch's state, in order, and returns the rows to drop:
      a frame with ``id``, ``reason`` and ``detail``.

    ``apply`` is ``decide([observe(frame)])``; ``ds.pipe`` observes a frame longer than
    ``batch_size`` in slices, as the executors observe batches. Parameters listed in
    ``decide_params`` only affect :meth:`decide`, so a sweep over them reuses the observed
    state (for example MinHash signatures across thresholds).

    Executors know no particular step. What a step needs from them it declares here:

    - :meth:`~Transform.prepare` (driver, once): read files through ``ik.read``;
    - :meth:`~Transform.shared_state` / :meth:`~Transform.attach_shared_state`: state built
      once on the driver and shipped to the workers that run :meth:`observe`;
    - :meth:`decide_options` / :meth:`decide_stats`: a grouping backend for :meth:`decide`
      on a given executor (MinHash groups band hashes with a Ray Data shuffle), and what
      it did, for the run's manifest;
    - :meth:`apply_decision`: how a decision changes one batch (drop, or flag);
    - :attr:`decides_per_record`: the verdict on a record depends on its own state only;
    - :attr:`observes_per_record` / :meth:`without`: a batch's state is made of its
      records' states, so the step can be observed in the same pass as the global step
      right before it, leaving out afterwards what that one dropped.
    """

    kind: ClassVar[Kind] = "global"
    #: True when :meth:`decide`'s verdict on a record depends only on that record's own
    #: state, never on other records' (decontamination: a record's overlap with the
    #: benchmarks, against an index built once by :meth:`~Transform.prepare`). Executors
    #: then run the step like a filter, ``apply`` on each batch, with no pass of its own:
    #: the same drops, without spilling the corpus and waiting for every batch first.
    #: A step whose parameters can make the verdict depend on other records (dedup,
    #: selection, sampling) leaves it False.
    decides_per_record: ClassVar[bool] = False
    #: True when :meth:`observe`'s state of a batch is made of each record's own state
    #: (hashes, signatures), never of the records' mix, and :meth:`without` leaves records
    #: out of it. Executors then observe the step in the same pass as a global step right
    #: before it (one pass over the corpus instead of two, and one spill less) and, once
    #: that one has decided, hand this one's states :meth:`without` the records it dropped:
    #: the same decision as observing only the records that reached it. Only a step whose
    #: :meth:`apply_decision` is the default (drop, add no column) is observed together
    #: with the step after it.
    observes_per_record: ClassVar[bool] = False

    def observe(self, batch: pl.DataFrame) -> Any:
        """Compact state for one batch (no texts)."""
        raise TypeError(f"{type(self).__name__} must implement observe(batch)")

    def decide(self, states: list[Any]) -> pl.DataFrame:
        """Rows to drop, as a frame with ``id``, ``reason``, ``detail`` (String columns)."""
        raise TypeError(f"{type(self).__name__} must implement decide(states)")

    def decide_options(self, executor: str) -> dict[str, Any]:
        """Keyword arguments for :meth:`decide` on ``executor`` (``"memory"``, ``"local"``
        or ``"ray"``), such as a grouping backend that runs on the cluster. Default ``{}``:
        ``decide`` groups in the driver's process."""
        return {}

    def decide_stats(self, options: dict[str, Any]) -> dict[str, Any]:
        """What the objects from :meth:`decide_options` did during ``decide`` (for the
        run's manifest, JSON values). Default ``{}``."""
        return {}

    def without(self, state: Any, ids: pl.Series) -> Any:
        """``state`` (of one batch, from :meth:`observe`) as if the records ``ids`` had not
        been in the batch; needed only when :attr:`observes_per_record` is True."""
        raise TypeError(f"{type(self).__name__} must implement without(state, ids) when observes_per_record is True")

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        return self.apply_decision(frame, self.decide([self.observe(frame)]))

    def apply_decision(self, frame: pl.DataFrame, drops: pl.DataFrame) -> pl.DataFrame:
        """Apply what :meth:`decide` returned to one batch (only the rows of ``drops`` whose id
        is in ``frame`` matter). Every path calls this: the in-memory ``apply`` and every
        executor. The default drops those rows; a step may flag them instead (a column)."""
        return apply_drops(frame, drops)


def apply_drops(frame: pl.DataFrame, drops: pl.DataFrame) -> pl.DataFrame:
    """Mark the rows of ``frame`` whose id is in ``drops`` (``id, reason, detail``).

    Example:
        >>> import polars as pl
        >>> f = pl.DataFrame({"id": ["a", "b"]})
        >>> d = pl.DataFrame({"id": ["b"], "reason": ["dup"], "detail": ["of a"]})
        >>> apply_drops(f, d)[REASON].to_list()
        [None, 'dup']
    """
    drops = drops.select(
        pl.col("id").cast(pl.String),
        pl.col("reason").cast(pl.String).alias(REASON),
        pl.col("detail").cast(pl.String).alias(DETAIL),
    )
    if REASON in frame.columns:
        joined = frame.join(drops.rename({REASON: "_r", DETAIL: "_d"}), on="id", how="left", maintain_order="left")
        return mark(joined, pl.col("_r"), pl.col("_d")).drop("_r", "_d")
    return frame.join(drops, on="id", how="left", maintain_order="left")


def detail(**fields: Any) -> str:
    """The removal ``detail`` convention: a compact JSON object with sorted keys.

    Each reason documents its keys (docs/pipeline.md); values are ids, numbers, short codes,
    never the record's text.

    Example:
        >>> detail(kept="a:1", similarity=0.91)
        '{"kept":"a:1","similarity":0.91}'
    """
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def detail_expr(**fields: pl.Expr) -> pl.Expr:
    """:func:`detail` as a polars expression, for steps that build details column-wise.

    Example:
        >>> import polars as pl
        >>> f = pl.DataFrame({"k": ["a:1"], "s": [0.5]})
        >>> f.select(detail_expr(kept=pl.col("k"), similarity=pl.col("s"))).item()
        '{"kept":"a:1","similarity":0.5}'
    """
    return pl.struct(**{k: fields[k] for k in sorted(fields)}).struct.json_encode()


def parse_detail(text: str | None) -> dict[str, Any]:
    """The keys of a ``detail`` written by :func:`detail` (``{}`` for null).

    Example:
        >>> parse_detail('{"kept":"a:1"}')
        {'kept': 'a:1'}
    """
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"a removal detail is a JSON object, got {text!r}")
    return value


def detail_field(key: str, column: str | pl.Expr = "detail", dtype: pl.DataType | None = None) -> pl.Expr:
    """One key of a ``detail`` column, column-wise (:func:`parse_detail` reads one row):
    null where the detail is null or lacks the key. ``dtype`` casts the value (it is read
    as a string).

    Example:
        >>> import polars as pl
        >>> f = pl.DataFrame({"detail": ['{"kept":"a:1","n":3}', None]})
        >>> f.select(detail_field("kept"), detail_field("n", dtype=pl.Int64).alias("n")).rows()
        [('a:1', 3), (None, None)]
    """
    expr = pl.col(column) if isinstance(column, str) else column
    value = expr.str.json_path_match(f"$.{key}").alias(key)
    return value if dtype is None else value.cast(dtype, strict=False)


def mark(
    frame: pl.DataFrame,
    reason: pl.Expr | pl.Series | pl.DataFrame | str | None,
    detail: pl.Expr | pl.Series | str | None = None,
) -> pl.DataFrame:
    """Return ``frame`` with its :data:`REASON` / :data:`DETAIL` columns set.

    ``reason`` may be an expression, a Series (null = keep) or a frame with ``reason`` and
    ``detail`` columns. Rows already marked by an earlier call keep their first reason.

    Example:
        >>> import polars as pl
        >>> f = pl.DataFrame({"x": [1, 2]})
        >>> mark(f, pl.when(pl.col("x") > 1).then(pl.lit("big")))[REASON].to_list()
        [None, 'big']
    """
    if isinstance(reason, pl.DataFrame):
        reason, detail = reason["reason"], reason["detail"] if "detail" in reason.columns else None
    r = _as_expr(reason)
    d = _as_expr(detail)
    d = pl.when(r.is_not_null()).then(d)
    if REASON in frame.columns:
        # keep the first reason a row was given
        return frame.with_columns(
            pl.coalesce(pl.col(REASON), r).alias(REASON),
            pl.when(pl.col(REASON).is_not_null()).then(pl.col(DETAIL)).otherwise(d).alias(DETAIL),
        )
    return frame.with_columns(r.alias(REASON), d.alias(DETAIL))


def _as_expr(value: pl.Expr | pl.Series | str | None) -> pl.Expr:
    if value is None:
        return pl.lit(None, dtype=pl.String)
    if isinstance(value, str):
        return pl.lit(value, dtype=pl.String)
    if isinstance(value, pl.Series):
        return pl.lit(value.cast(pl.String))
    return value.cast(pl.String)


_SECRET_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def _masked(value: Any) -> str:
    return repr(value) if value is None or is_secret_ref(value) else "'***'"


def secret_ref(variable: str) -> str:
    """The reference a recipe holds in place of a secret: ``${env:VARIABLE}``.

    Example:
        >>> secret_ref("IK_PII_SALT")
        '${env:IK_PII_SALT}'
    """
    return "${env:" + variable + "}"


def is_secret_ref(value: Any) -> bool:
    """True when ``value`` is a reference ``${env:NAME}`` rather than a secret itself.

    Example:
        >>> is_secret_ref("${env:IK_PII_SALT}"), is_secret_ref("pepper")
        (True, False)
    """
    return isinstance(value, str) and _SECRET_REF.fullmatch(value) is not None


def resolve_secret(value: str | None, what: str) -> str | None:
    """The secret itself: ``value``, or the environment variable a reference names.

    A reference to an unset variable is an error that names it (``what`` says which
    parameter of which step needs it).

    Example:
        >>> import os
        >>> os.environ["IK_DOC_SALT"] = "pepper"
        >>> resolve_secret("${env:IK_DOC_SALT}", "pii.scrub salt"), resolve_secret("s", "x")
        ('pepper', 's')
    """
    if value is None or not is_secret_ref(value):
        return value
    m = _SECRET_REF.fullmatch(value)
    assert m is not None
    name = m.group(1)
    if name not in os.environ:
        raise ValueError(
            f"{what} refers to the environment variable {name}, which is not set: export "
            f"{name}=... (a secret is never written to a recipe, only this reference)"
        )
    return os.environ[name]


def _plain(value: Any) -> Any:
    """Turn tuples into lists (recursively) so a config compares and dumps as YAML does;
    objects with a ``to_config()`` (benchmarks) become their recipe form."""
    if hasattr(value, "to_config") and not isinstance(value, type):
        return value.to_config()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def registry() -> dict[str, type[Transform]]:
    """Every transform class by its recipe name (importing the built-in ones first)."""
    import instructkit.catalog  # noqa: F401  (registers the built-in transforms)

    return dict(_REGISTRY)


def from_config(config: dict[str, Any] | str) -> Transform:
    """Build a transform from its recipe form: ``{"dedup.exact": {"keep": "longest"}}``.

    Example:
        >>> from instructkit.transform import from_config
        >>> from_config({"normalize": {}})
        Normalize()
    """
    if isinstance(config, str):
        config = {config: {}}
    if len(config) != 1:
        raise ValueError(f"a recipe step is one {{name: params}} mapping, got {config!r}")
    (name, params), = config.items()
    steps = registry()
    if name not in steps:
        raise ValueError(f"unknown step {name!r}; known steps: {sorted(steps)}")
    try:
        return steps[name](**(params or {}))
    except TypeError as e:
        raise ValueError(f"bad parameters for step {name!r}: {e}") from e
