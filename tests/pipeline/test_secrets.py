from __future__ import annotations

import pytest

from pipeline.secrets import MASK, mask, mask_text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://me:hunter2@db:5432/shop", "postgresql://me:***@db:5432/shop"),
        (
            "SELECT * FROM postgres_scan('host=db user=me password=hunter2', 'public', 'orders')",
            "SELECT * FROM postgres_scan('host=db user=me password=***', 'public', 'orders')",
        ),
        ("s3://bucket/key?token=abc123&x=1", "s3://bucket/key?token=***&x=1"),
        ("api_key: 'XYZ'", "api_key: ***"),
        ("plain/path/orders.csv", "plain/path/orders.csv"),
        ("    spark.hadoop.fs.s3a.secret.key: S3SECRET", "    spark.hadoop.fs.s3a.secret.key: ***"),
        ("db_password=pw; x-api-key: abc", "db_password=***; x-api-key: ***"),
        ("max_tokens: 5, tokenizer: bpe, pwdir: x", "max_tokens: 5, tokenizer: bpe, pwdir: x"),
    ],
)
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_mask_nested_config() -> None:
    config = {"data": {"query": "SELECT 1 -- password=pw", "password": "pw", "path": None}, "n": 3}
    assert mask(config) == {"data": {"query": f"SELECT 1 -- password={MASK}", "password": MASK, "path": None}, "n": 3}
