"""Embedded demo documents for a first search without a file: ``guimo index create NAME --demo cloud-docs``.

Both sets are the embedded defaults of other scenarios, turned into collection records (``id``,
``text`` and metadata fields to filter on), so the demo needs no download and shows on data
whose relevance is known why hybrid search exists:

- ``cloud-docs``: the 200 generated cloud-documentation pages of the ``search`` scenario
  (``guimo.data.retrieval.generate``), one per (service, action), with ``service`` and
  ``action`` as metadata. Users ask in other words ("get rid of my VM instance"), which BM25
  alone misses and embeddings find.
- ``shop-faq``: the 16 entries of the online-shop FAQ of the ``support`` scenario
  (``guimo.data.faq.embedded_faq``), question and answer as the text, ``question`` as metadata.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from guimo.errors import GuimoError

_PAGE = re.compile(r"^How to (?P<action>.+?) an? (?P<service>.+?)\. ")


def cloud_docs() -> list[dict[str, Any]]:
    """The search scenario's generated cloud-docs corpus, with the service and action of each page."""
    from guimo.data.retrieval import generate

    out = []
    for doc_id, text in generate(seed=0).corpus.items():
        m = _PAGE.match(text)
        if m is None:  # the generator changed its page template; say so rather than lose the metadata
            raise GuimoError(f"demo cloud-docs: page {doc_id} does not start 'How to <action> a <service>.': {text[:60]!r}")
        out.append({"id": doc_id, "text": text, "service": m["service"], "action": m["action"]})
    return out


def shop_faq() -> list[dict[str, Any]]:
    """The support scenario's embedded shop FAQ: question and answer as the text."""
    from guimo.data.faq import embedded_faq

    return [{"id": e.id, "text": e.text, "question": e.question} for e in embedded_faq().entries]


DEMOS: dict[str, Callable[[], list[dict[str, Any]]]] = {"cloud-docs": cloud_docs, "shop-faq": shop_faq}


def demo_records(name: str) -> list[dict[str, Any]]:
    """The records of demo ``name`` (see ``DEMOS``)."""
    if name not in DEMOS:
        raise GuimoError(f"unknown demo {name!r}; choose one of {', '.join(DEMOS)}")
    return DEMOS[name]()
