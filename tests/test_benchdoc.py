"""The benchmark docs: docs/BENCHMARKS.md is what bench/results gives, every link in it and in the detail pages
lands on a file and a heading that exist, and a bench script's section goes to its detail page, never the index."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import benchdoc  # noqa: E402
import index  # noqa: E402

LINK = re.compile(r"\]\(([^)\s]+)\)")


def links(path: Path) -> list[tuple[Path, str | None]]:
    """Every relative markdown link in ``path``: (target file, anchor or None)."""
    out = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        out.append(((path.parent / file).resolve() if file else path, anchor or None))
    return out


def test_the_index_is_what_bench_results_give():
    assert benchdoc.DOC.read_text(encoding="utf-8") == index.render(), "run: python bench/index.py"
    assert index.section_text("scale", "prereg") == index.prereg_list(), "run: python bench/index.py"
    assert index.main(["--check"]) == 0


def test_the_index_fits_on_one_screen_and_lists_every_headline_record():
    text = benchdoc.DOC.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 40
    rows = [line for line in text.splitlines() if line.startswith("| [")]
    written = [name for name, *_ in index.HEADLINES if (index.RESULTS / name).exists()]
    sections = {(area, section) for name, area, section, _ in index.HEADLINES if name in written}
    assert len(rows) >= len(sections) > 0  # a FOLDED section's records share one row
    for name in written:  # each headline record gives at least one row with its date
        assert index.date_of(json.loads((index.RESULTS / name).read_text()), index.RESULTS / name) in text


@pytest.mark.parametrize("doc", [benchdoc.DOC, *sorted(benchdoc.PAGES.glob("*.md"))], ids=lambda p: p.name)
def test_every_link_resolves_to_a_file_and_its_anchor_to_a_heading(doc):
    found = links(doc)
    assert found or doc.name != "BENCHMARKS.md"
    for target, anchor in found:
        assert target.exists(), f"{doc.relative_to(ROOT)}: link to {target} which does not exist"
        if anchor is not None:
            assert target.suffix == ".md", f"{doc.relative_to(ROOT)}: anchor #{anchor} into {target.name}"
            assert anchor in index.headings(target.read_text(encoding="utf-8")), (
                f"{doc.relative_to(ROOT)}: #{anchor} is no heading of {target.relative_to(ROOT)}")


def test_every_headline_record_carries_its_date_and_cpu():
    """A record from before the CPU was recorded says so (the machine from DEVELOPERS.md, marked recorded later);
    one written since must carry guimo.device.cpu_info()."""
    for name, *_ in index.HEADLINES:
        path = index.RESULTS / name
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        date = index.date_of(record, path)
        cpu = index.cpu_of(record, path)
        assert cpu["model"] and "flags" in cpu, name
        if date >= index.CPU_RECORDED_FROM:
            assert not cpu.get("recorded_later"), name  # cpu_of refuses a new record without one


def test_a_new_record_without_its_cpu_is_refused(tmp_path):
    path = index.RESULTS / "new.json"
    with pytest.raises(ValueError, match="new.json: no 'cpu' field"):
        index.cpu_of({"date": "2026-12-07"}, path)
    assert index.cpu_of({"date": "2026-11-28"}, path)["model"] == "AMD EPYC (recorded later)"
    assert index.cpu_label({"model": "Intel(R) Xeon(R) Platinum 8480+", "flags": ["avx512_bf16", "amx_bf16"]}) == "Intel(R) Xeon(R) Platinum 8480+ (AMX)"


@pytest.mark.parametrize("heading, anchor", [
    ("LM training throughput", "lm-training-throughput"),
    ("LM scaling laws (`bench/scale_lm.py`)", "lm-scaling-laws-benchscale_lmpy"),
    ("Time to the same validation NDCG vs RecBole (`bench/recommend_speed.py --to-quality`)",
     "time-to-the-same-validation-ndcg-vs-recbole-benchrecommend_speedpy---to-quality"),
    ("Scale: pre-registered refit, param-count", "scale-pre-registered-refit-param-count"),
])
def test_anchors_are_githubs(heading, anchor):
    assert index.slug(heading) == anchor


def test_a_repeated_heading_gets_githubs_suffix_and_fenced_lines_are_no_headings():
    assert index.headings("# A\n## B\n```\n# not a heading\n```\n## B\n") == ["a", "b", "b-1"]


def test_a_command_loses_its_environment_and_is_cut():
    cmd = "OMP_NUM_THREADS=1 MALLOC_TOP_PAD_=1 guimo scale recommend --config bench/recommend_beauty.toml --sizes d64x2h1"
    assert index.short_command(cmd, 30) == "guimo scale recommend --confi…"
    assert index.short_command("python bench/x.py") == "python bench/x.py"


# -- write_section -------------------------------------------------------------------------------


@pytest.fixture
def docs(tmp_path, monkeypatch):
    """An index and two detail pages in a temporary docs folder."""
    pages = tmp_path / "benchmarks"
    pages.mkdir()
    (tmp_path / "BENCHMARKS.md").write_text("# index\n")
    (pages / "lm.md").write_text("# lm\n\n## Speed\n<!-- bench:speed:start -->\nold\n<!-- bench:speed:end -->\n\nprose\n")
    (pages / "serve.md").write_text("# serve\n")
    monkeypatch.setattr(benchdoc, "DOC", tmp_path / "BENCHMARKS.md")
    monkeypatch.setattr(benchdoc, "PAGES", pages)
    return tmp_path


def test_a_section_is_rewritten_between_its_markers_only(docs):
    benchdoc.write_section("speed", "new\n", doc=benchdoc.page("lm"))
    assert (docs / "benchmarks" / "lm.md").read_text() == "# lm\n\n## Speed\n<!-- bench:speed:start -->\nnew\n<!-- bench:speed:end -->\n\nprose\n"


def test_a_script_that_names_no_page_writes_where_its_section_was_moved(docs):
    benchdoc.write_section("speed", "moved", doc=benchdoc.DOC)
    assert "moved" in (docs / "benchmarks" / "lm.md").read_text()
    assert (docs / "BENCHMARKS.md").read_text() == "# index\n"


def test_a_new_section_goes_under_its_heading_in_its_page_and_never_into_the_index(docs):
    benchdoc.write_section("load", "figures", heading="Load", doc=benchdoc.page("serve"))
    assert (docs / "benchmarks" / "serve.md").read_text() == "# serve\n\n## Load\n<!-- bench:load:start -->\nfigures\n<!-- bench:load:end -->\n"
    with pytest.raises(SystemExit, match="generated by bench/index.py"):
        benchdoc.write_section("other", "x", heading="Other", doc=benchdoc.DOC)
    with pytest.raises(ValueError, match="benchmark area 'gpu'"):
        benchdoc.page("gpu")
