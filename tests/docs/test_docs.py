"""The docs site: it builds with ``mkdocs build --strict`` (every link and anchor resolves), its generated
reference pages hold every CLI option and config key, its YAML examples are valid configs, and the
README's links resolve."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from pipeline.config import Config
from pipeline.monitor import MonitorConfig

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
README = REPO / "README.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("clv_docs_hooks", DOCS / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for this module with --strict (warnings are errors)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    assert "WARNING" not in build.stderr
    return out


def _nav_pages(nav: list[object]) -> list[str]:
    pages: list[str] = []
    for entry in nav:
        assert isinstance(entry, dict)
        for value in entry.values():
            pages += _nav_pages(value) if isinstance(value, list) else [str(value)]
    return pages


def test_every_page_is_in_the_nav_and_built(site: Path) -> None:
    config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    nav = _nav_pages(config["nav"])
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == on_disk
    assert len(nav) == 27
    for page in nav:
        assert (site / page.replace(".md", ".html")).is_file(), page


def test_site_needs_no_network(site: Path) -> None:
    """No web fonts, scripts or stylesheets from elsewhere: the site reads offline."""
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:link|script|img)[^>]+(?:href|src)="(https?://[^"]+)"', text)
        assert remote == [], (page, remote)


def test_cli_reference_lists_every_command_and_option(site: Path) -> None:
    parser = _hooks().cli_parser()
    page = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    commands = {"train", "prepare", "score", "whatif", "monitor", "promote", "compare", "models"}
    options = 0
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            assert set(action.choices) == commands
            for name, sub in action.choices.items():
                assert f"<code>clv {name}</code>" in page
                for option in sub._actions:
                    if option.option_strings and option.dest != "help":
                        assert f"<code>{option.option_strings[0]}</code>" in page, (name, option.dest)
                        options += 1
    assert options == 34


def test_config_reference_lists_every_key(site: Path) -> None:
    keys = [key for key, *_ in _hooks().config_keys()]
    page = (site / "reference" / "config.html").read_text(encoding="utf-8")
    for key in keys:
        assert f"<code>{key}</code>" in page, key
    assert len(keys) == len(set(keys)) == 115
    # every key of the commented default config is documented
    default = yaml.safe_load((REPO / "configs" / "default.yaml").read_text(encoding="utf-8"))
    assert set(_flatten(default)) <= set(keys)


def _flatten(mapping: dict[str, object], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in mapping.items():
        keys.append(f"{prefix}{key}")
        if isinstance(value, dict) and value:
            keys += _flatten(value, f"{prefix}{key}.") if f"{prefix}{key}" != "engine.conf" else []
    return keys


def test_config_reference_rows() -> None:
    """Type, default, limits and description of a few keys, as the models state them."""
    rows = {line.split(" | ")[0].strip("| `"): line for line in _hooks().config_reference().splitlines()}
    assert rows["prepare.calibration_end"].startswith(
        "| `prepare.calibration_end` | date (YYYY-MM-DD) | `1997-09-30` |"
    )
    assert "calibration" in rows["prepare.calibration_end"].split(" | ")[4]  # from the model's docstring
    assert rows["fit.mcmc.chains"] == (
        "| `fit.mcmc.chains` | integer | `2` | >= 2, <= 16 | at least 2: r-hat compares chains |"
    )
    assert rows["score.annual_discount_rate"].startswith(
        "| `score.annual_discount_rate` | number | `0.1` | >= 0, < 10 |"
    )
    assert rows["fit.candidates[].model"].startswith("| `fit.candidates[].model` | `bgnbd` \\| `mbgnbd` \\| ")
    assert "| required |" in rows["fit.candidates[].model"]
    assert rows["engine.memory_limit"].count("\\|") == 7  # the pattern's alternatives are escaped in the table


def _yaml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in sorted(DOCS.rglob("*.md")):
        for block in YAML_BLOCK.findall(page.read_text(encoding="utf-8")):
            blocks.append((str(page.relative_to(REPO)), block))
    return blocks


def test_yaml_examples_are_valid_configs() -> None:
    blocks = _yaml_blocks()
    assert len(blocks) == 14
    for where, block in blocks:
        raw = yaml.safe_load(block)
        if set(raw) == {"monitor"}:  # clv monitor's thresholds
            assert MonitorConfig.model_validate(raw["monitor"]) is not None, where
        else:
            assert Config.model_validate(raw) is not None, where


def test_readme_is_short_and_has_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 110
    assert "make run" in text
    assert "make test" in text
    assert "make docs" in text


def test_readme_links_resolve() -> None:
    targets = [t for t in LINK.findall(README.read_text(encoding="utf-8")) if not t.startswith(("http", "#"))]
    assert len(targets) == 28
    for target in targets:
        assert (REPO / target.split("#")[0]).exists(), target


def test_data_and_notebook_readmes_point_at_pages_that_exist() -> None:
    for readme in (REPO / "data" / "README.md", REPO / "notebooks" / "README.md"):
        pages = re.findall(r"`docs/([\w/-]+\.md)`", readme.read_text(encoding="utf-8"))
        assert pages, readme
        for page in pages:
            assert (DOCS / page).is_file(), (readme, page)
