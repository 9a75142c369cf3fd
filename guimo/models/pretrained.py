"""Load a local Hugging Face GPT-2 or BERT checkpoint into guimo's one Transformer.

Users who already downloaded a checkpoint fine-tune it here instead of starting from random
weights. Nothing is downloaded: ``path`` is a folder with ``config.json`` and the weights
(``model.safetensors``, a sharded ``model.safetensors.index.json``, or ``pytorch_model.bin``
read with ``weights_only=True`` so loading never runs pickled code).

The mapping is by weight name; the architectural differences become config fields:

==============  ==========================================  ======================================
                GPT-2 (decoder)                              BERT / MiniLM (encoder)
==============  ==========================================  ======================================
attention       ``c_attn`` fused qkv, Conv1D (transpose)     ``query``/``key``/``value`` -> fused qkv
norm            pre-norm + final ``ln_f``                    post-norm, LayerNorm after embeddings
activation      ``gelu_new`` = our ``gelu_tanh``             exact ``gelu``
head            tied to the token embedding                  none (``lm_head=False``); segments via
                                                             ``type_vocab_size``
==============  ==========================================  ======================================

From ``base_cfg`` only ``dropout`` (a fine-tuning choice) and a shorter ``max_len`` (the position
table is cut to it, which saves memory when the task needs shorter contexts) are taken; every
other field comes from the checkpoint, since the weights fix them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import torch

from guimo.errors import GuimoError
from guimo.models.transformer import TransformerConfig

State = dict[str, torch.Tensor]

# Hugging Face activation names -> ours. gelu_new and gelu_pytorch_tanh are the same tanh formula.
_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


def load_pretrained(path: str | Path, base_cfg: TransformerConfig) -> tuple[TransformerConfig, State]:
    """Read a local HF checkpoint folder; return guimo's config and a state dict for ``Transformer``.

    The state dict holds every parameter of ``Transformer(cfg)`` except a tied head, which
    shares the token embedding. Raises ``GuimoError`` for a missing folder or file, an
    unsupported architecture or a weight the mapping cannot find.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise GuimoError(f"{folder}: pretrained checkpoint folder not found")
    hf = _read_config(folder / "config.json")
    model_type = hf.get("model_type")
    converters: dict[str, Callable[[dict, TransformerConfig, State, Path], tuple[TransformerConfig, State]]] = {
        "gpt2": _from_gpt2,
        "bert": _from_bert,
    }
    if model_type not in converters:
        raise GuimoError(
            f"{folder / 'config.json'}: unsupported architecture model_type={model_type!r}; "
            f"guimo loads {', '.join(converters)} (GPT-2 decoders and BERT/MiniLM encoders)"
        )
    weights = _read_weights(folder)
    cfg, state = converters[model_type](hf, base_cfg, weights, folder)
    if cfg.max_len < state["pos_emb.weight"].shape[0]:
        state["pos_emb.weight"] = state["pos_emb.weight"][: cfg.max_len].clone()
    return cfg, state


# -- architectures -----------------------------------------------------------------------------


def _from_gpt2(hf: dict, base: TransformerConfig, w: State, folder: Path) -> tuple[TransformerConfig, State]:
    where = folder / "config.json"
    if hf.get("scale_attn_by_inverse_layer_idx"):
        raise GuimoError(f"{where}: scale_attn_by_inverse_layer_idx=true is not supported")
    if hf.get("scale_attn_weights") is False:
        raise GuimoError(f"{where}: scale_attn_weights=false is not supported")
    C = hf["n_embd"]
    cfg = _config(
        base,
        where,
        vocab_size=hf["vocab_size"],
        max_len=hf["n_positions"],
        n_layer=hf["n_layer"],
        n_head=hf["n_head"],
        d_model=C,
        d_ff=hf.get("n_inner") or 4 * C,
        causal=True,
        norm_first=True,
        tie_weights=hf.get("tie_word_embeddings", True),
        bias=True,
        activation=_activation(hf.get("activation_function", "gelu_new"), where),
        layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        embed_norm=False,
        type_vocab_size=0,
        lm_head=True,
    )
    get = _getter(w, folder, prefixes=("transformer.", ""))
    state = {"tok_emb.weight": get("wte.weight"), "pos_emb.weight": get("wpe.weight")}
    for i in range(cfg.n_layer):
        h, b = f"h.{i}.", f"blocks.{i}."
        # Conv1D stores (in, out); nn.Linear wants (out, in).
        for ours, theirs in (("attn.qkv", "attn.c_attn"), ("attn.proj", "attn.c_proj"), ("mlp.fc", "mlp.c_fc"), ("mlp.proj", "mlp.c_proj")):
            state[f"{b}{ours}.weight"] = get(f"{h}{theirs}.weight").t().contiguous()
            state[f"{b}{ours}.bias"] = get(f"{h}{theirs}.bias")
        for ours, theirs in (("ln1", "ln_1"), ("ln2", "ln_2")):
            state[f"{b}{ours}.weight"], state[f"{b}{ours}.bias"] = get(f"{h}{theirs}.weight"), get(f"{h}{theirs}.bias")
    state["ln_f.weight"], state["ln_f.bias"] = get("ln_f.weight"), get("ln_f.bias")
    if not cfg.tie_weights:
        state["head.weight"] = _getter(w, folder, prefixes=("",))("lm_head.weight")
    return cfg, state


def _from_bert(hf: dict, base: TransformerConfig, w: State, folder: Path) -> tuple[TransformerConfig, State]:
    where = folder / "config.json"
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise GuimoError(f"{where}: position_embedding_type={hf['position_embedding_type']!r} is not supported (only 'absolute')")
    cfg = _config(
        base,
        where,
        vocab_size=hf["vocab_size"],
        max_len=hf["max_position_embeddings"],
        n_layer=hf["num_hidden_layers"],
        n_head=hf["num_attention_heads"],
        d_model=hf["hidden_size"],
        d_ff=hf["intermediate_size"],
        causal=False,
        norm_first=False,
        tie_weights=False,
        bias=True,
        activation=_activation(hf.get("hidden_act", "gelu"), where),
        layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
        embed_norm=True,
        type_vocab_size=hf.get("type_vocab_size", 2),
        lm_head=False,
    )
    get = _getter(w, folder, prefixes=("bert.", ""))
    e = "embeddings."
    state = {
        "tok_emb.weight": get(e + "word_embeddings.weight"),
        "pos_emb.weight": get(e + "position_embeddings.weight"),
        "emb_norm.weight": get(e + "LayerNorm.weight"),
        "emb_norm.bias": get(e + "LayerNorm.bias"),
    }
    if cfg.type_vocab_size:
        state["type_emb.weight"] = get(e + "token_type_embeddings.weight")
    for i in range(cfg.n_layer):
        h, b = f"encoder.layer.{i}.", f"blocks.{i}."
        a = h + "attention."
        for part in ("weight", "bias"):
            state[f"{b}attn.qkv.{part}"] = torch.cat([get(f"{a}self.{n}.{part}") for n in ("query", "key", "value")], dim=0)
            state[f"{b}attn.proj.{part}"] = get(f"{a}output.dense.{part}")
            state[f"{b}ln1.{part}"] = get(f"{a}output.LayerNorm.{part}")
            state[f"{b}mlp.fc.{part}"] = get(f"{h}intermediate.dense.{part}")
            state[f"{b}mlp.proj.{part}"] = get(f"{h}output.dense.{part}")
            state[f"{b}ln2.{part}"] = get(f"{h}output.LayerNorm.{part}")
    return cfg, state


# -- helpers -----------------------------------------------------------------------------------


def _config(base: TransformerConfig, where: Path, **fields: Any) -> TransformerConfig:
    """The checkpoint's architecture with the user's dropout and (shorter) max_len.

    Always the standard parametrization: GPT-2 and BERT weights were trained in it, and muP's
    multipliers would change what they compute."""
    fields["max_len"] = min(fields["max_len"], base.max_len)
    fields.update(mup_base_width=None, mup_base_head_dim=None, mup_output_mult=1.0)
    try:
        return dataclasses.replace(base, **fields)
    except (TypeError, ValueError) as e:
        raise GuimoError(f"{where}: cannot build a transformer from this config ({e})") from None


def _activation(name: str, where: Path) -> str:
    if name not in _ACTIVATIONS:
        raise GuimoError(f"{where}: unsupported activation {name!r}; supported: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise GuimoError(f"{path}: not found (a Hugging Face checkpoint folder needs config.json)")
    try:
        hf = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GuimoError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(hf, dict):
        raise GuimoError(f"{path}: expected a JSON object")
    return hf


def _read_weights(folder: Path) -> State:
    """All tensors of the checkpoint on CPU, from safetensors (single or sharded) or a .bin."""
    from safetensors.torch import load_file

    single, index, pt = folder / "model.safetensors", folder / "model.safetensors.index.json", folder / "pytorch_model.bin"
    try:
        if single.is_file():
            return load_file(str(single))
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            state: State = {}
            for shard in shards:
                if not (folder / shard).is_file():
                    raise GuimoError(f"{folder / shard}: shard named in {index.name} not found")
                state.update(load_file(str(folder / shard)))
            return state
        if pt.is_file():
            return torch.load(pt, map_location="cpu", weights_only=True)
    except GuimoError:
        raise
    except Exception as e:  # safetensors / torch.load / JSON errors all mean a damaged file
        raise GuimoError(f"{folder}: cannot read the weights ({type(e).__name__}: {e})") from None
    raise GuimoError(f"{folder}: no weights found (expected model.safetensors, model.safetensors.index.json or pytorch_model.bin)")


def _getter(w: State, folder: Path, prefixes: tuple[str, ...]) -> Callable[[str], torch.Tensor]:
    """Look a weight up under any of ``prefixes`` (HF saves heads-wrapped models with a prefix).

    Old BERT checkpoints name LayerNorm parameters gamma/beta; both spellings are accepted.
    """

    def get(name: str) -> torch.Tensor:
        alternatives = [name]
        if name.endswith("LayerNorm.weight"):
            alternatives.append(name[: -len("weight")] + "gamma")
        elif name.endswith("LayerNorm.bias"):
            alternatives.append(name[: -len("bias")] + "beta")
        for p in prefixes:
            for n in alternatives:
                if p + n in w:
                    return w[p + n].float()
        raise GuimoError(f"{folder}: weight '{prefixes[0]}{name}' not found in the checkpoint")

    return get
