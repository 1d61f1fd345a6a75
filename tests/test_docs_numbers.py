"""Every paired difference the prose quotes (README, docs/) is one a committed page prints, sign included.

A page (docs/results/NAME/report.md) prints each claim as a row "| A | B | n | +d ± se |": the two means and their
mean paired difference. The prose quotes it as "+d ± se", "-d ± se" or "d ± se above / below", rounded to as many
decimals as it writes, and where it adds the two means ("+d ± se (A vs B"), they must be that row's.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROSE = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NUMBER = r"\d+(?:\.\d+)?"
PRINTED = re.compile(rf"([-+]{NUMBER}) ± ({NUMBER})")
CLAIM_ROW = re.compile(rf"\| ({NUMBER}) \| ({NUMBER}) \| \d+ \| ([-+]{NUMBER}) ± ({NUMBER}) \|")
SIGNED = re.compile(rf"(?<![\w.])([-+]{NUMBER}) ± ({NUMBER})(?:\s+\(({NUMBER})\s+(?:vs|against)\s+({NUMBER}))?")
IN_WORDS = re.compile(rf"(?<![-+\w.])({NUMBER}) ± ({NUMBER}) (?:points |nats )?(above|below)")

Printed = tuple[float, float, float | None, float | None]  # d, se, the two means (None outside a claim row)
Quote = tuple[str, str, str, str | None, str | None]  # the quote, d and se as written, the means if written


def printed_differences(page: str) -> list[Printed]:
    """Each claim row of a page as (d, se, A, B), then every "+d ± se" it prints as (d, se, None, None)."""
    rows = [(float(d), float(se), float(a), float(b)) for a, b, d, se in CLAIM_ROW.findall(page)]
    return rows + [(float(d), float(se), None, None) for d, se in PRINTED.findall(page)]


def quoted_differences(prose: str) -> list[Quote]:
    """Each difference the prose quotes: (the quote, signed d and se as written, the two means where written)."""
    quotes = [(m.group(), d, se, a, b) for m in SIGNED.finditer(prose) for d, se, a, b in [m.groups()]]
    return quotes + [(m.group(), ("-" if side == "below" else "+") + d, se, None, None)
                     for m in IN_WORDS.finditer(prose) for d, se, side in [m.groups()]]


def _as_written(value: float | None, written: str, sign: str = "") -> bool:
    decimals = len(written.split(".")[1]) if "." in written else 0
    return value is not None and f"{value:{sign}.{decimals}f}" == written


def _prints(row: Printed, quote: Quote) -> bool:
    d, se, a, b = row
    _, quoted_d, quoted_se, quoted_a, quoted_b = quote
    means = quoted_a is None or quoted_b is None or any(
        _as_written(first, quoted_a) and _as_written(second, quoted_b) for first, second in ((a, b), (b, a)))
    return _as_written(d, quoted_d, "+") and _as_written(se, quoted_se) and means


def unprinted(prose: str, printed: list[Printed]) -> list[str]:
    """The quotes of ``prose`` that no printed difference rounds to: sign, se and the means where quoted."""
    return [quote[0] for quote in quoted_differences(prose) if not any(_prints(row, quote) for row in printed)]


@pytest.fixture(scope="module")
def every_page() -> list[Printed]:
    pages = sorted((ROOT / "docs" / "results").glob("*/report.md"))
    assert pages, "no committed report under docs/results"
    return [row for page in pages for row in printed_differences(page.read_text())]


@pytest.mark.parametrize("document", PROSE, ids=lambda path: path.name)
def test_every_quoted_difference_is_printed_by_a_committed_page(document, every_page):
    assert unprinted(document.read_text(), every_page) == []


def test_a_flipped_sign_a_stale_se_a_stale_mean_and_an_unprinted_difference_are_found():
    page = printed_differences("| 0.75 over 0.9 | kNN (%) | 80.12 | 77.46 | 3 | +2.66 ± 0.54 | 1.08 | holds |\n"
                               "FSIM: +0.0060 ± 0.0016")
    assert page == [(2.66, 0.54, 80.12, 77.46), (2.66, 0.54, None, None), (0.006, 0.0016, None, None)]
    prose = ("0.9 hurts: +2.66 ± 0.54 (80.12 vs 77.46), +2.66 ± 0.54 (77.46 against 80.12); rounded +0.006 ± 0.002 "
             "and +2.7 ± 0.5; in words 2.66 ± 0.54 above. Wrong: -2.66 ± 0.54, 2.66 ± 0.54 below, +2.66 ± 0.55, "
             "+1.00 ± 0.54, +2.66 ± 0.54 (80.12 vs 77.50).")
    assert unprinted(prose, page) == ["-2.66 ± 0.54", "+2.66 ± 0.55", "+1.00 ± 0.54", "+2.66 ± 0.54 (80.12 vs 77.50",
                                      "2.66 ± 0.54 below"]
