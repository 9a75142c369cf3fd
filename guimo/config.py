"""Typed configs: nested dataclasses, loaded from TOML/YAML/JSON and overridden by ``--set``.

One path for every override: ``apply_overrides(cfg, ["train.lr=3e-4", "model=small"], presets)``.
Values are parsed by the declared field type; an unknown key is refused with the list of valid
ones, so a typo never silently does nothing (RecBole's silent typos are what we avoid).
A bare section name with a value (``model=small``) replaces that section with a named preset.
"""

from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from guimo.errors import GuimoError

T = TypeVar("T")
Presets = dict[str, dict[str, dict[str, Any]]]  # section -> preset name -> field values


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-serialisable dict of a (nested) config dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def from_dict(cls: type[T], data: dict[str, Any], *, _prefix: str = "") -> T:
    """Build ``cls`` from a dict, recursively; unknown keys raise ``GuimoError``."""
    if not isinstance(data, dict):
        raise GuimoError(f"config section '{_prefix.rstrip('.') or '<root>'}' must be a table, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        key = _prefix + sorted(unknown)[0]
        raise GuimoError(f"unknown config key '{key}'; valid keys: {', '.join(_prefix + k for k in fields)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, _prefix=f"{_prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, f"{_prefix}{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise GuimoError(f"invalid config{' in ' + _prefix.rstrip('.') if _prefix else ''}: {e}") from None


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file into a plain dict."""
    path = Path(path)
    if not path.is_file():
        raise GuimoError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text) or {}
        if path.suffix == ".json":
            return json.loads(text)
    except Exception as e:  # each parser has its own error type; all mean "malformed file"
        raise GuimoError(f"{path}: cannot parse config ({e})") from None
    raise GuimoError(f"{path}: config must be .toml, .yaml, .yml or .json")


def merge(cfg: T, data: dict[str, Any], presets: Presets | None = None) -> T:
    """Return ``cfg`` with the (partial, nested) values of ``data`` applied.

    A section given as a string names a preset, as ``--set model=small`` does: in TOML
    ``model = "small"``. (To refine a preset, follow the file with ``--set model.dropout=...``.)
    """
    data = dict(data)
    for section, value in list(data.items()):
        if isinstance(value, str) and presets and section in presets:
            cfg = _replace_section(cfg, section, _preset(presets, section, value))
            del data[section]
    merged = _deep_update(to_dict(cfg), data)
    return from_dict(type(cfg), merged)


def apply_overrides(cfg: T, overrides: list[str], presets: Presets | None = None) -> T:
    """Apply ``key=value`` strings in order. ``section=name`` loads a preset for that section."""
    presets = presets or {}
    for item in overrides:
        if "=" not in item:
            raise GuimoError(f"bad --set '{item}': expected key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key in presets:
            cfg = _replace_section(cfg, key, _preset(presets, key, raw.strip()))
            continue
        keys = valid_keys(cfg)
        if key not in keys:
            hint = f" (presets: {', '.join(f'{s}=<name>' for s in presets)})" if presets else ""
            raise GuimoError(f"unknown config key '{key}'; valid keys: {', '.join(keys)}{hint}")
        cfg = _set_path(cfg, key.split("."), raw, key)
    return cfg


def explicit_keys(cfg: Any, data: dict[str, Any], overrides: list[str], presets: Presets | None = None) -> set[str]:
    """The dotted keys a config file's ``data`` and ``--set`` ``overrides`` name: what the user chose.

    A preset (``model=small``, or ``model = "small"`` in a file) names every key of its section.
    Lets a scenario tell a value the user set from a declared default that equals it.
    """
    presets = presets or {}
    keys: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, value in node.items():
            key = prefix + name
            if isinstance(value, dict):
                walk(value, key + ".")
            elif not prefix and isinstance(value, str) and name in presets:
                keys.update(valid_keys(getattr(cfg, name), key + "."))
            else:
                keys.add(key)

    walk(data, "")
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        keys.update(valid_keys(getattr(cfg, key), key + ".") if key in presets else [key])
    return keys


def valid_keys(cfg: Any, prefix: str = "") -> list[str]:
    """Every dotted key that ``--set`` accepts for this config."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out += valid_keys(value, f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the comment/metadata 'help' declared with it (for --help and docs)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


# -- internals ---------------------------------------------------------------------------------


def _preset(presets: Presets, section: str, name: str) -> dict[str, Any]:
    table = presets[section]
    if name not in table:
        raise GuimoError(f"unknown {section} preset '{name}'; choose one of: {', '.join(table)}")
    return table[name]


def _replace_section(cfg: Any, section: str, values: dict[str, Any]) -> Any:
    current = getattr(cfg, section)
    fresh = from_dict(type(current), values, _prefix=f"{section}.")
    return dataclasses.replace(cfg, **{section: fresh})


def _set_path(cfg: Any, parts: list[str], raw: str, full_key: str) -> Any:
    head = parts[0]
    value = getattr(cfg, head)
    if len(parts) > 1:
        return dataclasses.replace(cfg, **{head: _set_path(value, parts[1:], raw, full_key)})
    tp = get_type_hints(type(cfg))[head]
    try:
        return dataclasses.replace(cfg, **{head: _coerce(parse_scalar(raw, tp), tp, full_key)})
    except (TypeError, ValueError) as e:
        raise GuimoError(f"invalid value for '{full_key}': {e}") from None


def parse_scalar(raw: str, tp: Any) -> Any:
    """Turn the text of ``--set k=v`` into a Python value guided by the field type."""
    raw = raw.strip()
    if raw.lower() in ("none", "null") and _allows_none(tp):
        return None
    origin = get_origin(tp)
    if origin in (list, tuple) or (origin in (Union, types.UnionType) and any(get_origin(a) in (list, tuple) for a in get_args(tp))):
        if raw.startswith("["):
            return json.loads(raw)
        return [s.strip() for s in raw.split(",") if s.strip()]
    return raw


def _allows_none(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        errors = []
        for arg in get_args(tp):
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except (GuimoError, TypeError, ValueError) as e:
                errors.append(str(e))
        raise GuimoError(f"'{key}': {value!r} does not fit {_type_name(tp)}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise GuimoError(f"'{key}' must be one of {', '.join(map(str, choices))}; got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise GuimoError(f"'{key}' must be a list; got {value!r}")
        (item_tp, *_) = get_args(tp) or (Any,)
        items = [_coerce(v, item_tp, key) for v in value]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise GuimoError(f"'{key}' must be a table; got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise GuimoError(f"'{key}' must be true or false; got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise GuimoError(f"'{key}' must be an integer; got {value!r}")
        if isinstance(value, int):
            return value
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise GuimoError(f"'{key}' must be an integer; got {value!r}") from None
        if not f.is_integer():
            raise GuimoError(f"'{key}' must be an integer; got {value!r}")
        return int(f)
    if tp is float:
        if isinstance(value, bool):
            raise GuimoError(f"'{key}' must be a number; got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise GuimoError(f"'{key}' must be a number; got {value!r}") from None
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise GuimoError(f"'{key}' must be a string; got {value!r}")
        return str(value)
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _deep_update(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_update(out[k], v)
        else:
            out[k] = v
    return out
