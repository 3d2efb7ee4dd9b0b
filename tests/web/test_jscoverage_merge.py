"""Folding V8's block-coverage ranges into per-character flags (no browser needed)."""

from __future__ import annotations

from tests.web import jscoverage


def test_nested_ranges_override_their_enclosing_range() -> None:
    text = "function f(){if(a){b()}else{c()}}"
    # V8 order: the function's range first, then its blocks; the else-branch never ran
    whole = {"startOffset": 0, "endOffset": len(text), "count": 1}
    else_block = {"startOffset": text.index("else"), "endOffset": len(text) - 1, "count": 0}
    jscoverage._covered.pop("t.js", None)
    jscoverage.merge("t.js", text, [{"ranges": [else_block, whole]}])  # any order given
    flags = jscoverage._covered.pop("t.js")
    ran = "".join(ch for ch, flag in zip(text, flags, strict=True) if flag)
    assert ran == "function f(){if(a){b()}}"


def test_sessions_merge_as_a_union() -> None:
    text = "aaaa"
    jscoverage._covered.pop("u.js", None)
    jscoverage.merge("u.js", text, [{"ranges": [{"startOffset": 0, "endOffset": 2, "count": 1}]}])
    jscoverage.merge("u.js", text, [{"ranges": [{"startOffset": 2, "endOffset": 4, "count": 3}]}])
    assert list(jscoverage._covered.pop("u.js")) == [1, 1, 1, 1]
