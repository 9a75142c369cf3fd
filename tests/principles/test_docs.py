"""docs/principles.md is generated: its deterministic tables must equal what the code computes now."""

from __future__ import annotations

from pathlib import Path

import pytest

from guimo.principles.backprop import article_backprop
from guimo.principles.gradient_descent import gradient_descent
from guimo.principles.tables import article_tables, gradient_descent_tables, to_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "principles.md"


@pytest.fixture(scope="module")
def doc() -> str:
    if not DOC.is_file():
        pytest.skip(f"{DOC} not generated (python -m guimo.principles.docs)")
    return DOC.read_text(encoding="utf-8")


def test_gradient_descent_tables_in_the_doc_match_the_code(doc):
    for result in (gradient_descent(), gradient_descent(lr=0.3, steps=12)):
        assert to_markdown(gradient_descent_tables(result)[0]) in doc


def test_article_tables_in_the_doc_match_the_code(doc):
    for table in article_tables(article_backprop()):
        assert to_markdown(table) in doc


def test_the_doc_links_plots_that_exist(doc):
    for name in ("principles_gradient_descent.png", "principles_backprop.png", "principles_first_model.png"):
        assert f"]({name})" in doc and (DOC.parent / name).stat().st_size > 10_000


def test_the_page_says_what_the_article_is_before_using_the_phrase(doc):
    intro = doc.index("The seed article is the essay on the principles of large models")
    assert intro < doc.index("the article") and intro < doc.index("The article")
