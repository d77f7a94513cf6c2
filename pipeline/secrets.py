"""Masking of credentials before anything is logged to MLflow or printed.

Connection strings and secrets can sit in a config (a database password in ``data.query``, keys in a
URL): ``user:password@`` in URLs, ``password=...``-style pairs in text, and the values of keys whose
name says they are secret are replaced by ``***``.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(r"(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|credential)", re.I)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s'\"]+):[^@/\s'\"]+@")
_PAIR = re.compile(  # the key may be dotted or prefixed: spark.hadoop.fs.s3a.secret.key, db_password, x-api-key
    r"(?P<key>(?<![\w.-])[\w.-]*?(?<![a-zA-Z])(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)"
    r"(?![a-zA-Z])[\w.-]*\s*[=:]\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|[^\s;&,)'\"]+)",
    re.I,
)


def mask_text(text: str) -> str:
    """``postgresql://me:hunter2@db/x`` -> ``postgresql://me:***@db/x``; ``password=hunter2`` -> ``password=***``."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _PAIR.sub(lambda m: f"{m['key']}{MASK}", text)


def mask(value: Any) -> Any:
    """A copy of ``value`` (dicts, lists, strings) with secrets masked."""
    if isinstance(value, dict):
        return {k: MASK if _SECRET_KEY.search(str(k)) and v is not None else mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value
