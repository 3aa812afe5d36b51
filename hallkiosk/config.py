"""Layered, versioned TOML configuration validated by strict pydantic models.

Layers, lowest first: packaged defaults -> provisioning overlay -> site file. Tables merge key by
key; arrays (e.g. ``[[lockerd.buses]]``) are replaced whole by the higher layer. Every file states
its ``schema_version``; older files are migrated one version at a time before merging.

Each component validates only its own sections, once, at start-up (``load_sections``) and keeps
the typed result; there is no global config object. Unknown top-level sections are rejected here,
unknown keys inside a section by the component's model (``extra="forbid"``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from hallkiosk.errors import HallkioskError

SCHEMA_VERSION = 1
# Sections owned by a component. A section name outside this set is a typo or a stale file.
KNOWN_SECTIONS = frozenset({"site", "lockerd", "kiosk", "uplink", "hall", "provisioning"})

Migration = Callable[[dict[str, Any]], dict[str, Any]]
# from_version -> function returning the document at from_version + 1.
MIGRATIONS: Mapping[int, Migration] = {}

M = TypeVar("M", bound=BaseModel)


class ConfigError(HallkioskError, ValueError):
    code = "config_invalid"
    message_zh = "设备配置有误，请联系运维人员。"
    message_en = "The device configuration is invalid. Please contact ops."

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StrictModel(BaseModel):
    """Base for every config model: unknown keys and type coercion are errors, values immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass(frozen=True)
class Layer:
    path: str  # shown in messages
    data: dict[str, Any]


def packaged_defaults_path() -> str:
    return str(resources.files("hallkiosk").joinpath("defaults.toml"))


def read_layer(path: Path | str) -> Layer:
    name = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError([f"{name}: file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{name}: not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror}"]) from None
    return Layer(name, data)


def migrate(
    layer: Layer, migrations: Mapping[int, Migration] = MIGRATIONS, current: int = SCHEMA_VERSION
) -> Layer:
    data = dict(layer.data)
    version = data.get("schema_version")
    if version is None:
        raise ConfigError(
            [f"{layer.path}: schema_version: missing (this release writes {current})"]
        )
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError([f"{layer.path}: schema_version: must be a positive integer"])
    if version > current:
        raise ConfigError(
            [
                f"{layer.path}: schema_version: {version} is newer than this release "
                f"understands ({current})"
            ]
        )
    while version < current:
        step = migrations.get(version)
        if step is None:
            raise ConfigError(
                [f"{layer.path}: schema_version: no migration from version {version}"]
            )
        data = step(data)
        version += 1
        data["schema_version"] = version
    return Layer(layer.path, data)


def merge_layers(layers: Sequence[Layer]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Deep-merge tables; remember which file set each key so errors can name it."""
    merged: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}

    def walk(dst: dict[str, Any], src: dict[str, Any], prefix: tuple[str, ...], path: str) -> None:
        for key, value in src.items():
            here = (*prefix, key)
            if isinstance(value, dict) and isinstance(dst.get(key), dict):
                walk(dst[key], value, here, path)
            else:
                dst[key] = _deep_copy(value)
                origin[here] = path
                for old in [k for k in origin if k[: len(here)] == here and k != here]:
                    del origin[old]
                if isinstance(value, dict):
                    _record(value, here, path, origin)

    for layer in layers:
        walk(merged, layer.data, (), layer.path)
    return merged, origin


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _record(
    table: dict[str, Any], prefix: tuple[str, ...], path: str, origin: dict[tuple[str, ...], str]
) -> None:
    for key, value in table.items():
        origin[(*prefix, key)] = path
        if isinstance(value, dict):
            _record(value, (*prefix, key), path, origin)


def _origin_of(loc: tuple[str, ...], origin: Mapping[tuple[str, ...], str], fallback: str) -> str:
    for n in range(len(loc), 0, -1):
        if loc[:n] in origin:
            return origin[loc[:n]]
    return fallback


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass(frozen=True)
class LoadedConfig:
    """The merged document plus where each key came from. Components validate their sections."""

    data: dict[str, Any]
    origin: dict[tuple[str, ...], str]
    files: tuple[str, ...]

    def describe(self, loc: Sequence[int | str], reason: str) -> str:
        """``FILE: key.path[2].leaf: reason`` for a problem found after validation."""
        str_loc = tuple(p for p in loc if isinstance(p, str))
        last = self.files[-1] if self.files else "<defaults>"
        return f"{_origin_of(str_loc, self.origin, last)}: {_format_loc(loc)}: {reason}"

    def section(self, name: str, model: type[M]) -> M:
        return self.sections({name: model})[name]  # type: ignore[return-value]

    def sections(self, models: Mapping[str, type[BaseModel]]) -> dict[str, BaseModel]:
        problems: list[str] = []
        out: dict[str, BaseModel] = {}
        for name, model in models.items():
            try:
                out[name] = self.validate((name,), model)
            except ConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)
        return out

    def validate(self, path: Sequence[str], model: type[M]) -> M:
        """The table at ``path`` (e.g. ``("kiosk", "ui")``) as ``model``; missing tables are
        empty. For a part needed before the rest of its section is checked (kiosk/app.py)."""
        raw: Any = self.data
        for key in path:
            raw = raw.get(key, {}) if isinstance(raw, dict) else raw
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            last = self.files[-1] if self.files else "<defaults>"
            problems = []
            for err in exc.errors():
                loc = (*path, *[str(p) if not isinstance(p, int) else p for p in err["loc"]])
                str_loc = tuple(p for p in loc if isinstance(p, str))
                where = _origin_of(str_loc, self.origin, last)
                problems.append(f"{where}: {_format_loc(loc)}: {_reason(err)}")
            raise ConfigError(problems) from None


def _reason(err: Any) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(err.get("msg", "invalid"))
    if "input" in err and kind.endswith("_type"):
        msg += f" (got {type(err['input']).__name__})"
    return msg.removeprefix("Value error, ")


def load(
    paths: Sequence[Path | str],
    *,
    with_defaults: bool = True,
    migrations: Mapping[int, Migration] = MIGRATIONS,
    current: int = SCHEMA_VERSION,
) -> LoadedConfig:
    """Read, migrate and merge the layers. Raises ConfigError listing every problem found."""
    names = ([packaged_defaults_path()] if with_defaults else []) + [str(p) for p in paths]
    layers = [migrate(read_layer(p), migrations, current) for p in names]
    problems = [
        f"{layer.path}: {key}: unknown section (known: {', '.join(sorted(KNOWN_SECTIONS))})"
        for layer in layers
        for key, value in layer.data.items()
        if key != "schema_version" and (key not in KNOWN_SECTIONS or not isinstance(value, dict))
    ]
    if problems:
        raise ConfigError(problems)
    merged, origin = merge_layers(layers)
    return LoadedConfig(merged, origin, tuple(names))
