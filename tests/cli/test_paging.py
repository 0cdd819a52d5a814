"""``follow_pages``: every page of a node's listing, bounded, and never a spin on a bad cursor."""

from __future__ import annotations

from typing import Any

import pytest

from tpledger.cli.errors import CliError
from tpledger.cli.paging import follow_pages


class _Node:
    """Answers ``GET path?limit=N[&role=…][&after=C]`` from a list of pages."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages, self.asked = pages, []

    def get_json(self, path: str, signed: bool = False) -> Any:
        self.asked.append((path, signed))
        return self.pages[min(len(self.asked), len(self.pages)) - 1]


def test_follows_the_cursor_filters_and_stops_at_the_bound() -> None:
    node = _Node([{"rows": [{"n": 1}, {"n": 2}], "next": "b"},
                  {"rows": [{"n": 3}], "next": "c"}, {"rows": [{"n": 4}], "next": None}])
    rows = follow_pages(node, "/v1/x", "rows", "x list", page=2, query="&role=a",  # type: ignore[arg-type]
                        signed=True, keep=lambda r: r["n"] != 2)
    assert [r["n"] for r in rows] == [1, 3, 4]
    assert node.asked == [("/v1/x?limit=2&role=a", True), ("/v1/x?limit=2&role=a&after=b", True),
                          ("/v1/x?limit=2&role=a&after=c", True)]
    node = _Node([{"rows": [{"n": i} for i in range(3)], "next": f"c{k}"} for k in range(9)])
    assert len(follow_pages(node, "/v1/x", "rows", "x", page=3, max_rows=5)) == 5  # type: ignore[arg-type]
    assert len(node.asked) == 2


def test_a_cursor_that_does_not_advance_or_a_bad_page_is_an_error() -> None:
    stuck = _Node([{"rows": [], "next": "a"}])  # with a filter that drops every row: no spin
    with pytest.raises(CliError, match="x list cursor does not advance"):
        follow_pages(stuck, "/v1/x", "rows", "x list", page=2, keep=lambda r: False)  # type: ignore[arg-type]
    with pytest.raises(CliError, match="x list answer is not a list of objects"):
        follow_pages(_Node([{"rows": ["no"]}]), "/v1/x", "rows", "x list", page=2)  # type: ignore[arg-type]
