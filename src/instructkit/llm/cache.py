"""A persistent response cache addressed by content, so no request is ever sent twice.

The key of a response is the SHA-256 of the model name, the conversation and the sampling
parameters (canonical JSON). Entries are written one by one as responses arrive, in SQLite
with write-ahead logging, so a run killed with ``kill -9`` keeps every response it received
and a re-run sends only the requests that never came back.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def default_cache_dir() -> Path:
    """``$INSTRUCTKIT_CACHE`` or ``~/.cache/instructkit`` (``$XDG_CACHE_HOME`` honoured).

    Example:
        >>> default_cache_dir().name in ("instructkit",) or "INSTRUCTKIT_CACHE" in __import__("os").environ
        True
    """
    if os.environ.get("INSTRUCTKIT_CACHE"):
        return Path(os.environ["INSTRUCTKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "instructkit"


def request_key(model: str, messages: Any, params: Mapping[str, Any]) -> str:
    """The content address of one request.

    Example:
        >>> k = request_key("m", [{"role": "user", "content": "Hi"}], {"temperature": 0})
        >>> len(k), k == request_key("m", [{"role": "user", "content": "Hi"}], {"temperature": 0})
        (64, True)
    """
    body = json.dumps({"model": model, "messages": messages, "params": dict(params)},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class ResponseCache:
    """SQLite table ``key -> response text``, safe to share between threads.

    Example:
        >>> import tempfile, pathlib
        >>> cache = ResponseCache(pathlib.Path(tempfile.mkdtemp()) / "r.sqlite")
        >>> cache.put("k", "hello"); cache.get("k"), cache.get("other")
        ('hello', None)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL)")

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

    def get(self, key: str) -> str | None:
        """The cached response for ``key``, or None."""
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, response: str) -> None:
        """Store one response (committed at once: it survives a killed process)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses (key, response) VALUES (?, ?)", (key, response))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
