"""Memo interpolation rules of spec 16."""

from __future__ import annotations

import random
import re

import pytest

from cedros_pay.x402.memo import MAX_MEMO_BYTES, interpolate_memo

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
    from cedros_pay.x402.memo import memo_matcher

    template = "article:{resource}:{nonce}"
    produced = interpolate_memo(template, {"resource": "p-1", "nonce": "aBc1De_-"})
    matcher = memo_matcher(template, {"resource": "p-1"})
    assert matcher.fullmatch(produced)
    assert not matcher.fullmatch("article:p-2:aBc1De_-")
    assert not matcher.fullmatch("article:p-1:short")
    assert not matcher.fullmatch("article:p-1:aBc1De_-extra")
    assert memo_matcher("", {"resource": "p.1"}).fullmatch("Payment for p.1")
    assert not memo_matcher("", {"resource": "p.1"}).fullmatch("Payment for pX1")


def _reference(template: str, values: dict[str, str], limit: int = 566) -> str:
    """Spec 16's rule written as one regex substitution (the straightforward reading)."""
    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1) or match.group(2))
        return match.group(0) if value is None else value
    out = re.sub(r"\{\{\s*(\w+)\s*\}\}|\{(\w+)\}", fill, template or "Payment for {resource}")
    return out.encode()[:limit].decode(errors="ignore")


def test_interpolation_matches_the_plain_substitution_on_random_templates() -> None:
    rng = random.Random(16)
    atoms = ["{resource}", "{{nonce}}", "{{ amount }}", "{wallet}", "{unknown}", "{", "}",
             "{{", "}}", ":", "pay ", "é", "{ nonce}", "{{resource}", "x" * 40]
    values = {"resource": "article", "nonce": "AbCd_-12", "amount": "1.50", "wallet": ""}
    for _ in range(500):
        template = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 20)))
        assert interpolate_memo(template, values) == _reference(template, values), template


def test_nonce_slots_joined_by_a_nonce_equal_the_interpolation() -> None:
    from cedros_pay.x402.memo import nonce_slots

    rng = random.Random(17)
    atoms = ["{resource}", "{{nonce}}", "{nonce}", "{{ amount }}", "{wallet}", "{unknown}",
             "{", "}", ":", "pay ", "é", "x" * 40, "{{resource}", "é" * 120]
    fixed = {"resource": "{nonce}", "amount": "1.50"}  # a value that looks like a placeholder
    seen_none = 0
    for _ in range(500):
        template = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 30)))
        nonce = "".join(rng.choice("AbCd_-12") for _ in range(8))
        slots = nonce_slots(template, fixed, len(nonce))
        expected = interpolate_memo(template, {**fixed, "nonce": nonce})
        if slots is None:  # only when the memo would be cut
            seen_none += 1
            uncut = _reference(template, {**fixed, "nonce": nonce}, limit=10_000)
            assert len(uncut.encode()) > MAX_MEMO_BYTES
        else:
            assert nonce.join(slots) == expected, template
    assert seen_none  # the long templates were met too
