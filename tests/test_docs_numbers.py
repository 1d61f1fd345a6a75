"""Every paired difference the prose quotes (README, docs/) is one a committed page prints, sign included.

A page (docs/results/NAME/report.md) prints each claim's mean paired difference as "+d ± se"; the prose quotes it
as "+d ± se", "-d ± se" or "d ± se above / below", rounded to as many decimals as it writes.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SIGNED = re.compile(r"(?<![\w.])([-+])(\d+(?:\.\d+)?) ± (\d+(?:\.\d+)?)")
IN_WORDS = re.compile(r"(?<![-+\w.])(\d+(?:\.\d+)?) ± (\d+(?:\.\d+)?) (?:points |nats )?(above|below)")
PROSE = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def printed_differences(page: str) -> list[tuple[float, float]]:
    """Each "+d ± se" of a page as (signed d, se)."""
    return [(float(sign + d), float(se)) for sign, d, se in SIGNED.findall(page)]


def quoted_differences(prose: str) -> list[tuple[str, str, str]]:
    """Each difference the prose quotes as (the quote, signed d as written, se as written)."""
    quotes = [(m.group(), sign + d, se) for m in SIGNED.finditer(prose) for sign, d, se in [m.groups()]]
    quotes += [(m.group(), ("-" if side == "below" else "+") + d, se)
               for m in IN_WORDS.finditer(prose) for d, se, side in [m.groups()]]
    return quotes


def _decimals(written: str) -> int:
    return len(written.split(".")[1]) if "." in written else 0


def unprinted(prose: str, printed: list[tuple[float, float]]) -> list[str]:
    """The quotes of ``prose`` that no printed (d, se) rounds to, sign included."""
    return [quote for quote, d, se in quoted_differences(prose)
            if not any(f"{pd:+.{_decimals(d)}f}" == d and f"{pse:.{_decimals(se)}f}" == se for pd, pse in printed)]


@pytest.fixture(scope="module")
def every_page() -> list[tuple[float, float]]:
    pages = sorted((ROOT / "docs" / "results").glob("*/report.md"))
    assert pages, "no committed report under docs/results"
    return [pair for page in pages for pair in printed_differences(page.read_text())]


@pytest.mark.parametrize("document", PROSE, ids=lambda path: path.name)
def test_every_quoted_difference_is_printed_by_a_committed_page(document, every_page):
    assert unprinted(document.read_text(), every_page) == []


def test_a_flipped_sign_a_stale_se_and_an_unprinted_difference_are_found():
    page = printed_differences("| claim | kNN | 3 | +2.66 ± 0.54 | 1.08 | holds |\n| c | FSIM | +0.0060 ± 0.0016 |")
    assert page == [(2.66, 0.54), (0.006, 0.0016)]
    prose = ("0.9 hurts: +2.66 ± 0.54 linear; rounded +0.006 ± 0.002 and +2.7 ± 0.5; in words 2.66 ± 0.54 above. "
             "Wrong: -2.66 ± 0.54, 2.66 ± 0.54 below, +2.66 ± 0.55, +1.00 ± 0.54.")
    assert unprinted(prose, page) == ["-2.66 ± 0.54", "+2.66 ± 0.55", "+1.00 ± 0.54", "2.66 ± 0.54 below"]
