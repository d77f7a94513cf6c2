"""MkDocs hook: pages generated from the code.

A page that holds the marker ``<!-- clv:cli-reference -->`` gets the ``clv`` command's reference, read from
its argparse parser; ``<!-- clv:config-reference -->`` gets every config key (type, default, limits,
description), read from the pydantic models behind ``pipeline.config.Config``. Both are found by
introspection, so the pages follow the code when modules move.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

__all__ = [
    "CLI_MARKER",
    "CONFIG_MARKER",
    "cli_parser",
    "cli_reference",
    "config_keys",
    "config_reference",
    "on_page_markdown",
]

CLI_MARKER = "<!-- clv:cli-reference -->"
CONFIG_MARKER = "<!-- clv:config-reference -->"
DEFAULT_YAML = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


# --- CLI -------------------------------------------------------------------------------------------------


def cli_parser() -> argparse.ArgumentParser:
    """The ``clv`` parser: the zero-argument function of ``pipeline.cli`` annotated to return an ArgumentParser
    (or, failing that, one of the usual builder names)."""
    cli = importlib.import_module("pipeline.cli")
    functions = {
        name: function
        for name, function in sorted(vars(cli).items())
        if inspect.isfunction(function) and function.__module__ == cli.__name__
    }
    builders = [function for function in functions.values() if _builds_parser(function)]
    if not builders:
        builders = [functions[name] for name in _BUILDER_NAMES if name in functions][:1]
    if len(builders) != 1:
        raise RuntimeError(f"expected one parser builder in pipeline.cli, found {[b.__name__ for b in builders]}")
    parser = builders[0]()
    if not isinstance(parser, argparse.ArgumentParser):
        raise TypeError(f"pipeline.cli.{builders[0].__name__} did not return an ArgumentParser")
    return parser


_BUILDER_NAMES = ("build_parser", "make_parser", "parser", "_build_parser", "_parser")


def _builds_parser(function: Callable[..., object]) -> bool:
    signature = inspect.signature(function)
    if any(p.default is inspect.Parameter.empty for p in signature.parameters.values()):
        return False
    returned = signature.return_annotation
    return returned is argparse.ArgumentParser or returned in ("argparse.ArgumentParser", "ArgumentParser")


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def _options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            yield action


def _option_row(action: argparse.Action) -> str:
    name = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
    value = "flag" if action.nargs == 0 else f"`{action.metavar or action.dest.upper()}`"
    required = "yes" if action.required else "no"
    default = "" if action.default in (None, False, argparse.SUPPRESS) else f"`{action.default}`"
    return f"| {name} | {value} | {required} | {default} | {_cell(action.help or '')} |"


def cli_reference() -> str:
    """Markdown for every ``clv`` command: its usage, what it does and each option."""
    parser = cli_parser()
    lines = [f"`{parser.prog}`: {parser.description or ''}", ""]
    for name, summary, sub in _subcommands(parser):
        lines += [f"## `{parser.prog} {name}`", "", f"{summary[:1].upper()}{summary[1:]}.", ""]
        lines += ["```", " ".join(sub.format_usage().split()).removeprefix("usage: "), "```", ""]
        rows = [_option_row(action) for action in _options(sub)]
        if rows:
            lines += ["| option | value | required | default | meaning |", "|---|---|---|---|---|", *rows, ""]
    return "\n".join(lines)


# --- config ----------------------------------------------------------------------------------------------


def _config_class() -> type[BaseModel]:
    config = importlib.import_module("pipeline.config").Config
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        raise TypeError("pipeline.config.Config is not a pydantic model")
    return config


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``X``, ``X | None``, ``tuple[X, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for argument in typing.get_args(annotation):
        found += [m for m in _models_in(argument) if m not in found]
    return found


def _is_list(annotation: object) -> bool:
    return any(typing.get_origin(a) is tuple for a in (annotation, *typing.get_args(annotation)))


def _registered_models(field: FieldInfo) -> str:
    """A purchase-model name is text checked against the model registry: list the registered names."""
    from pipeline.config.fit import PurchaseModelName

    if field.metadata != list(typing.get_args(PurchaseModelName)[1:]):
        return ""
    from models import registry

    return " \\| ".join(f"`{name}`" for name in registry.names())


def _type_name(annotation: object) -> str:
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        names = {"str": "text", "Path": "path", "date": "date (YYYY-MM-DD)", "float": "number", "int": "integer"}
        return names.get(annotation.__name__, annotation.__name__)
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in arguments)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in arguments)
    if origin is tuple:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            inner = "sections" if _models_in(arguments[0]) else _type_name(arguments[0])
            return f"list of {inner}"
        return f"[{', '.join(_type_name(a) for a in arguments)}]"
    if origin is dict:
        return f"mapping of {_type_name(arguments[0])} to {_type_name(arguments[1])}"
    return str(annotation).replace("typing.", "")


def _yaml(value: object) -> str:
    """A default as it is written in the YAML config."""
    if isinstance(value, BaseModel):
        return _yaml(value.model_dump())
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return ""
    return f"`{_yaml(value)}`"


_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _limits(field: FieldInfo) -> str:
    found = []
    for item in field.metadata:
        for attribute, sign in _BOUNDS.items():
            bound = getattr(item, attribute, None)
            if bound is not None:
                found.append(f"{sign} {bound}")
        pattern = getattr(item, "pattern", None)
        if pattern is not None:
            found.append(f"matches `{pattern}`")
    return ", ".join(found)


def _docstring_entries(model: type[BaseModel]) -> dict[str, str]:
    """``key``: text entries of a model's docstring (how the config models describe several keys at once)."""
    doc = inspect.cleandoc(model.__doc__ or "")
    entries: dict[str, str] = {}
    for paragraph in re.split(r"\n(?=``\w+``:)|\n\s*\n", doc):
        match = re.match(r"``(\w+)``:\s*(.*)", paragraph, flags=re.DOTALL)
        if match:
            entries[match.group(1)] = " ".join(match.group(2).split())
    return entries


def _default_yaml_comments(path: Path = DEFAULT_YAML) -> dict[str, str]:
    """Trailing ``# comments`` of ``configs/default.yaml``, by dotted key: the description of keys whose model
    field has none."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    if not path.is_file():
        return comments
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(\s*)(\w+):(.*?)(?:\s#\s*(.*))?$", line)
        if not match:
            continue
        indent = len(match.group(1))
        stack = [(i, k) for i, k in stack if i < indent]
        stack.append((indent, match.group(2)))
        if match.group(4):
            comments[".".join(k for _, k in stack)] = match.group(4).strip()
    return comments


def config_keys(
    model: type[BaseModel] | None = None, prefix: str = ""
) -> Iterator[tuple[str, FieldInfo, str, type[BaseModel]]]:
    """Every key of the config as (dotted key, field, description, owning model), depth first."""
    model = model or _config_class()
    described = _docstring_entries(model)
    comments = _default_yaml_comments()
    for name, field in model.model_fields.items():
        yaml_name = field.alias or name
        key = f"{prefix}{yaml_name}"
        description = field.description or described.get(yaml_name) or comments.get(key.replace("[]", ""), "")
        yield key, field, description, model
        for inner in _models_in(field.annotation):
            yield from config_keys(inner, f"{key}[]." if _is_list(field.annotation) else f"{key}.")


def _model_intro(model: type[BaseModel]) -> str:
    doc = model.__doc__
    if not doc or doc == BaseModel.__doc__:
        return ""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    keep = [p for p in paragraphs if not re.match(r"``\w+``:", p)]
    return _rst_to_md("\n\n".join(keep))


def _rst_to_md(text: str) -> str:
    return text.replace("``", "`")


def _cell(text: str) -> str:
    return _rst_to_md(" ".join(text.split())).replace("|", "\\|")


def _anchor(key: str) -> str:
    return key.replace("[]", "").replace(".", "-")


def config_reference() -> str:
    """Markdown: one section per config model, each followed by its sub-sections, one table row per key."""
    rows: dict[str, list[str]] = {}
    intros: dict[str, str] = {}
    children: dict[str, list[str]] = {}
    for key, field, description, model in config_keys():
        prefix = key.rpartition(".")[0]
        if prefix not in rows:
            rows[prefix], intros[prefix] = [], _model_intro(model)
            children.setdefault(prefix, [])
            if prefix:
                children.setdefault(prefix.rpartition(".")[0], []).append(prefix)
        if _models_in(field.annotation) and not description:
            description = f"see [`{key}`](#{_anchor(key)})"
        kind = _registered_models(field) or _type_name(field.annotation)
        rows[prefix].append(
            f"| `{key}` | {kind} | {_default(field)} | {_cell(_limits(field))} | {_cell(description)} |"
        )

    def section(prefix: str) -> list[str]:
        title = f"`{prefix}`" if prefix else "Top level"
        lines = [f"## {title} {{#{_anchor(prefix) or 'top-level'}}}", ""]
        lines += [intros[prefix], ""] if intros[prefix] else []
        lines += ["| key | type | default | limits | description |", "|---|---|---|---|---|", *rows[prefix], ""]
        for child in children[prefix]:
            lines += section(child)
        return lines

    return "\n".join(section("")).strip() + "\n"


# --- hook ------------------------------------------------------------------------------------------------


def on_page_markdown(markdown: str, **_: object) -> str:
    """Replace the markers by the generated references."""
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if CONFIG_MARKER in markdown:
        markdown = markdown.replace(CONFIG_MARKER, config_reference())
    return markdown
