"""Memo interpolation rules of spec 16."""

from __future__ import annotations

import random
import re

import pytest

from cedros_pay.core.memo import MAX_MEMO_BYTES, interpolate_memo

VALUES = {"resource": "product-123", "nonce": "aBc1DeFg", "wallet": "W1", "amount": "1.5"}


@pytest.mark.parametrize(("template", "expected"), [
    ("cedros:{resource}:{nonce}", "cedros:product-123:aBc1DeFg"),
    ("Article:{{resource}}", "Article:product-123"),
    ("{{ resource }}/{wallet}/{amount}", "product-123/W1/1.5"),
    ("keep {unknown} and {{other}}", "keep {unknown} and {{other}}"),
    ("", "Payment for product-123"),
    ("no placeholders", "no placeholders"),
])
def test_placeholders_are_filled_and_unknown_ones_kept(template: str, expected: str) -> None:
    assert interpolate_memo(template, VALUES) == expected


def test_missing_value_leaves_the_placeholder() -> None:
    assert interpolate_memo("{resource}:{nonce}", {"resource": "r"}) == "r:{nonce}"


def test_overlong_memo_is_cut_to_566_bytes_on_a_character_boundary() -> None:
    memo = interpolate_memo("é" * 400, {})
    assert len(memo.encode()) <= MAX_MEMO_BYTES
    assert memo == "é" * 283


def test_memo_matcher_accepts_what_interpolation_produces() -> None:
    from cedros_pay.core.memo import memo_matcher

    template = "article:{resource}:{nonce}"
    produced = interpolate_memo(template, {"resource": "p-1", "nonce": "aBc1De_-"})
    matcher = memo_matcher(template, {"resource": "p-1"})
    assert matcher.fullmatch(produced)
    assert not matcher.fullmatch("article:p-2:aBc1De_-")
    assert not matcher.fullmatch("article:p-1:short")
    assert not matcher.fullmatch("article:p-1:aBc1De_-extra")
    assert memo_matcher("", {"resource": "p.1"}).fullmatch("Payment for p.1")
    assert not memo_matcher("", {"resource": "p.1"}).fullmatch("Payment for pX1")


def _reference(template: str, values: dict[str, str]) -> str:
    """Spec 16's rule written as one regex substitution (the straightforward reading)."""
    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1) or match.group(2))
        return match.group(0) if value is None else value
    out = re.sub(r"\{\{\s*(\w+)\s*\}\}|\{(\w+)\}", fill, template or "Payment for {resource}")
    return out.encode()[:566].decode(errors="ignore")


def test_interpolation_matches_the_plain_substitution_on_random_templates() -> None:
    rng = random.Random(16)
    atoms = ["{resource}", "{{nonce}}", "{{ amount }}", "{wallet}", "{unknown}", "{", "}",
             "{{", "}}", ":", "pay ", "é", "{ nonce}", "{{resource}", "x" * 40]
    values = {"resource": "article", "nonce": "AbCd_-12", "amount": "1.50", "wallet": ""}
    for _ in range(500):
        template = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 20)))
        assert interpolate_memo(template, values) == _reference(template, values), template
