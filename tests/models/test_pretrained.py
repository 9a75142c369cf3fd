"""Loading local Hugging Face GPT-2 and BERT checkpoints into guimo's Transformer.

Each test builds a small randomly initialised `transformers` model, saves it to tmp_path and
checks that guimo computes the same logits / hidden states. No download ever happens.
"""

from __future__ import annotations

import json

import pytest
import torch

from guimo.errors import GuimoError
from guimo.models.pretrained import load_pretrained
from guimo.models.transformer import Transformer, TransformerConfig
from guimo.train.checkpoint import load_model_state
from tests.numerics import assert_close, assert_equal, transformer_reduction

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()
VOCAB = 101


def _gpt2(tmp_path, **overrides):
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(vocab_size=VOCAB, n_positions=40, n_embd=48, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0, **overrides)
    model = transformers.GPT2LMHeadModel(hf_cfg).eval()
    _perturb(model)
    model.save_pretrained(tmp_path)
    return model


def _bert(tmp_path, **overrides):
    torch.manual_seed(0)
    hf_cfg = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=80, max_position_embeddings=40, **overrides
    )
    model = transformers.BertModel(hf_cfg).eval()
    _perturb(model)
    model.save_pretrained(tmp_path)
    return model


def _perturb(model):
    """HF inits biases to 0 and LayerNorms to 1; randomise them so a swapped mapping shows."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))


def _close(got, expected, model, seq_len, name):
    """Same function, different kernels (HF's Conv1D/addmm against our Linear): equal to float32
    rounding over the reductions a value passes through (tests.numerics)."""
    c = model.cfg
    n = transformer_reduction(d_model=c.d_model, ff_width=c.ff_width, n_layer=c.n_layer, n_head=c.n_head, seq_len=seq_len)
    assert_close(got, expected, dtype=torch.float32, reduction=n, name=name)


def _guimo(path, base=None):
    cfg, state = load_pretrained(path, base or TransformerConfig())
    model = Transformer(cfg).eval()
    load_model_state(model, state)  # strict apart from a tied head
    return model


@pytest.mark.numerics
def test_gpt2_logits_match(tmp_path):
    hf = _gpt2(tmp_path)
    ours = _guimo(tmp_path)
    assert ours.cfg.causal and ours.cfg.norm_first and ours.cfg.tie_weights and ours.cfg.activation == "gelu_tanh"
    assert ours.head.weight is ours.tok_emb.weight
    x = torch.randint(0, VOCAB, (3, 33))
    with torch.no_grad():
        expected, got = hf(x).logits, ours(x)
    _close(got, expected, ours, 33, "gpt2 logits")


@pytest.mark.numerics
def test_gpt2_loads_in_the_standard_parametrization_under_a_mup_base(tmp_path):
    """A run configured for muP that starts from GPT-2 weights computes what GPT-2 computes."""
    hf = _gpt2(tmp_path)
    ours = _guimo(tmp_path, TransformerConfig(n_head=4, d_model=64, mup_base_width=32))
    assert ours.cfg.mup_base_width is None
    x = torch.randint(0, VOCAB, (2, 20))
    with torch.no_grad():
        _close(ours(x), hf(x).logits, ours, x.shape[1], "gpt2 logits")


@pytest.mark.numerics
def test_gpt2_untied_head_and_bin_weights(tmp_path):
    """tie_word_embeddings=False keeps a separate head; pytorch_model.bin loads with weights_only."""
    hf = _gpt2(tmp_path, tie_word_embeddings=False, n_inner=72, activation_function="relu")
    state = {k: v.contiguous() for k, v in hf.state_dict().items()}
    (tmp_path / "model.safetensors").unlink()
    torch.save(state, tmp_path / "pytorch_model.bin")
    ours = _guimo(tmp_path)
    assert not ours.cfg.tie_weights and ours.cfg.ff_width == 72 and ours.cfg.activation == "relu"
    assert ours.head.weight.data_ptr() != ours.tok_emb.weight.data_ptr()
    x = torch.randint(0, VOCAB, (2, 17))
    with torch.no_grad():
        _close(ours(x), hf(x).logits, ours, x.shape[1], "gpt2 logits")


@pytest.mark.numerics
def test_gpt2_kv_cache_continues_hf_sequence(tmp_path):
    """Greedy decoding with guimo's KV cache reproduces HF's full-sequence logits step by step."""
    hf = _gpt2(tmp_path)
    ours = _guimo(tmp_path)
    x = torch.randint(0, VOCAB, (1, 12))
    cache = ours.new_cache(1)
    with torch.no_grad():
        first = ours(x[:, :8], cache=cache)
        rest = [ours(x[:, t : t + 1], cache=cache) for t in range(8, 12)]
        full = hf(x).logits
    _close(torch.cat([first, *rest], dim=1), full, ours, 12, "cached gpt2 logits")


@pytest.mark.numerics
def test_shorter_max_len_cuts_position_table(tmp_path):
    hf = _gpt2(tmp_path)
    ours = _guimo(tmp_path, TransformerConfig(max_len=16, dropout=0.1))
    assert ours.cfg.max_len == 16 and ours.pos_emb.weight.shape == (16, 48) and ours.cfg.dropout == 0.1
    x = torch.randint(0, VOCAB, (2, 16))
    with torch.no_grad():
        _close(ours.eval()(x), hf(x).logits, ours, 16, "gpt2 logits")


@pytest.mark.numerics
def test_bert_hidden_states_match_with_segments_and_padding(tmp_path):
    hf = _bert(tmp_path)
    ours = _guimo(tmp_path)
    c = ours.cfg
    assert (c.causal, c.norm_first, c.embed_norm, c.lm_head, c.type_vocab_size, c.layer_norm_eps, c.activation) == (
        False, False, True, False, 2, 1e-12, "gelu",
    )
    x = torch.randint(0, VOCAB, (3, 21))
    types = torch.randint(0, 2, (3, 21))
    mask = torch.ones(3, 21, dtype=torch.long)
    mask[1, 15:] = 0
    mask[2, 5:] = 0
    with torch.no_grad():
        _close(ours(x, token_type_ids=types), hf(x, token_type_ids=types).last_hidden_state, ours, 21, "bert hidden states")
        got = ours(x, token_type_ids=types, key_mask=mask)
        expected = hf(x, token_type_ids=types, attention_mask=mask).last_hidden_state
    real = mask.bool()
    _close(got[real], expected[real], ours, 21, "bert hidden states, padded")
    # the mask matters: without it the padded rows' real positions would differ
    assert (ours(x, token_type_ids=types)[1, :15] - got[1, :15]).abs().max() > 1e-3


@pytest.mark.numerics
def test_bert_under_a_task_wrapper_prefix_and_old_layernorm_names(tmp_path):
    """BertForMaskedLM saves 'bert.'-prefixed names; very old checkpoints say gamma/beta."""
    hf = _bert(tmp_path)
    state = {("bert." + k).replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v for k, v in hf.state_dict().items()}
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    ours = _guimo(tmp_path)
    x = torch.randint(0, VOCAB, (2, 9))
    with torch.no_grad():
        _close(ours(x), hf(x).last_hidden_state, ours, 9, "bert hidden states")


# -- errors ------------------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(GuimoError, match="checkpoint folder not found"):
        load_pretrained(tmp_path / "nope", TransformerConfig())


def test_missing_config(tmp_path):
    with pytest.raises(GuimoError, match="config.json.*not found"):
        load_pretrained(tmp_path, TransformerConfig())


def test_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(GuimoError, match=r"unsupported architecture model_type='llama'.*gpt2, bert"):
        load_pretrained(tmp_path, TransformerConfig())


def test_malformed_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(GuimoError, match="config.json: not valid JSON"):
        load_pretrained(tmp_path, TransformerConfig())


def test_missing_weights_file(tmp_path):
    _gpt2(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(GuimoError, match="no weights found"):
        load_pretrained(tmp_path, TransformerConfig())


def test_missing_weight_is_named(tmp_path):
    hf = _gpt2(tmp_path)
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in hf.state_dict().items() if k != "transformer.h.1.mlp.c_fc.weight" and k != "lm_head.weight"}
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(GuimoError, match=r"weight 'transformer.h.1.mlp.c_fc.weight' not found"):
        load_pretrained(tmp_path, TransformerConfig())


def test_torn_weights_file(tmp_path):
    _gpt2(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(GuimoError, match="cannot read the weights"):
        load_pretrained(tmp_path, TransformerConfig())


def test_unsupported_activation(tmp_path):
    _bert(tmp_path, hidden_act="silu")
    with pytest.raises(GuimoError, match="unsupported activation 'silu'"):
        load_pretrained(tmp_path, TransformerConfig())


def test_pipeline_init_from_pretrained(tmp_path):
    """`--set init.pretrained=DIR` builds the run's model from the checkpoint (init stage)."""
    from safetensors.torch import load_file

    from guimo.config import apply_overrides
    from guimo.io import read_json
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios.lm import SCENARIO

    ckpt = tmp_path / "gpt2"
    hf_cfg = transformers.GPT2Config(vocab_size=512, n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(hf_cfg).save_pretrained(ckpt)
    hf_tok = _save_tokenizer(ckpt, ["a pretraining corpus unlike the fine-tuning one"] * 20, vocab_size=400)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog {i % 7}\n" for i in range(600)))
    cfg = apply_overrides(SCENARIO.config_cls(), ["model=nano", f"data.path={corpus}", "data.vocab_size=300", f"init.pretrained={ckpt}"], SCENARIO.presets)
    run = run_pipeline("lm", cfg, tmp_path / "run", to_stage="init", quiet=True)
    # the run tokenizes with the checkpoint's tokenizer (its embeddings' ids), not a new BPE of the corpus
    from guimo.scenarios.lm import load_tokenizer

    sample = "the quick brown fox 42"
    assert load_tokenizer(run).encode(sample).ids == hf_tok(sample)["input_ids"]
    assert run.manifest["stages"]["preprocess"]["vocab_size"] == len(hf_tok)
    model_cfg = read_json(run / "model_config.json")
    assert (model_cfg["vocab_size"], model_cfg["d_model"], model_cfg["max_len"], model_cfg["activation"]) == (512, 32, 64, "gelu_tanh")
    assert run.manifest["stages"]["init"]["init"] == f"pretrained:{ckpt}"
    _, expected = load_pretrained(ckpt, TransformerConfig())
    saved = load_file(str(run / "checkpoints" / "init.safetensors"))
    for name, tensor in expected.items():
        assert_equal(saved[name], tensor, name=name)


def _save_tokenizer(folder, texts, vocab_size):
    """A GPT-2-style byte-level BPE saved the way `transformers` saves one (tokenizer.json)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    hf_tok.save_pretrained(folder)
    return hf_tok


@pytest.mark.parametrize("problem, message", [
    ("none", "no tokenizer.json"),
    ("no_eos", "has no <|endoftext|> token"),
    ("too_big", "the tokenizer has 600 tokens but the model only 512 embeddings"),
])
def test_pipeline_refuses_a_pretrained_checkpoint_without_a_fitting_tokenizer(tmp_path, problem, message):
    from guimo.scenarios.lm import pretrained_tokenizer

    transformers.GPT2Config(vocab_size=512, n_positions=64, n_embd=32, n_layer=2, n_head=2).save_pretrained(tmp_path)
    if problem == "no_eos":
        from tokenizers import Tokenizer, models

        Tokenizer(models.BPE(vocab={"a": 0, "b": 1}, merges=[])).save(str(tmp_path / "tokenizer.json"))
    elif problem == "too_big":
        _save_tokenizer(tmp_path, [" ".join(f"w{i}x{i * 7}" for i in range(900))], vocab_size=600)
    with pytest.raises(GuimoError, match=message):
        pretrained_tokenizer(tmp_path)


def test_gpt2_vocab_and_merges_files_are_read(tmp_path):
    from guimo.scenarios.lm import pretrained_tokenizer

    hf_tok = _save_tokenizer(tmp_path / "src", ["hello world, hello tokenizers"] * 10, vocab_size=300)
    model = hf_tok.backend_tokenizer.model
    model.save(str(tmp_path))  # writes vocab.json + merges.txt, as GPT-2 checkpoints ship them
    (tmp_path / "config.json").write_text('{"vocab_size": 512}')
    tok = pretrained_tokenizer(tmp_path)
    assert tok.encode("hello world").ids == hf_tok("hello world")["input_ids"]
    assert tok.decode(tok.encode("hello world").ids) == "hello world"


def test_pipeline_refuses_weights_that_do_not_fit(tmp_path):
    """A model whose names differ from the mapping must fail loudly, not keep random weights."""
    from guimo.models.load import load_weights

    _gpt2(tmp_path)
    _, state = load_pretrained(tmp_path, TransformerConfig())
    wrapper = torch.nn.ModuleDict({"encoder": Transformer(TransformerConfig(vocab_size=VOCAB, max_len=40, d_model=48, n_layer=2))})
    with pytest.raises(GuimoError, match="pretrained weights do not fit this model: no place for"):
        load_weights(wrapper, state, strict=False)
