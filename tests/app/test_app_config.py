"""updater.toml: a good file, and every problem named with its file and line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.config import AppConfig, default_config_path, load_config, to_updater_config
from core.errors import ConfigError

GOOD = """\
# Dungeon Crawl updater
product = "dcrawl"
name = "Dungeon Crawl"
url = "https://cdn.example.com/dcrawl/"
channel = "beta"
install_dir = "game"
pubkeys = ["RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3", "RWRkZXZ="]
auto_start = true

[launch]
program = "bin/dcrawl"
args = ["--fullscreen", "--lang=en"]

[window]
title = "Dungeon Crawl"
icon = "icon-64.png"
accent = "#3d7eff"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "updater.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg == AppConfig(
        path=(tmp_path / "updater.toml").resolve(),
        url="https://cdn.example.com/dcrawl/",
        product="dcrawl",
        name="Dungeon Crawl",
        channel="beta",
        install_dir=(tmp_path / "game").resolve(),
        default_install_dir=(tmp_path / "game").resolve(),
        pubkeys=("RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3", "RWRkZXZ="),
        auto_start=True,
        program="bin/dcrawl",
        args=("--fullscreen", "--lang=en"),
        title="Dungeon Crawl",
        icon=cfg.icon,
        accent="#3d7eff",
    )
    # The icon is not beside the config, so it comes from assets/.
    assert cfg.icon is not None and cfg.icon.name == "icon-64.png" and cfg.icon.is_file()
    assert cfg.window_title == "Dungeon Crawl"
    ucfg = to_updater_config(cfg, tmp_path / "elsewhere")
    assert (ucfg.url, ucfg.install_dir, ucfg.channel, ucfg.product, ucfg.pubkeys) == (
        cfg.url,
        tmp_path / "elsewhere",
        "beta",
        "dcrawl",
        cfg.pubkeys,
    )


def test_minimal_file_and_ask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    cfg = load_config(write(tmp_path, 'url = "http://lan:8080/"\n'))
    assert cfg.install_dir == tmp_path.resolve()  # beside the config by default
    assert cfg.channel == "stable" and cfg.pubkeys == () and not cfg.auto_start
    assert cfg.window_title == "Updater" and cfg.program == ""
    cfg = load_config(
        write(
            tmp_path,
            'url = "http://lan/"\nname = "A: B"\ninstall_dir = "ask"\npubkey = "RWQx"\n',
        )
    )
    assert cfg.ask_install_dir and cfg.install_dir is None
    # Per user, so no elevation is ever needed (app/installs.py says why these folders).
    if sys.platform == "win32":
        assert cfg.default_install_dir == tmp_path / "local" / "Programs" / "A B"
    elif sys.platform != "darwin":
        assert cfg.default_install_dir == tmp_path / "data" / "A B"
    assert cfg.shortcuts == ("menu",) and cfg.uninstall_entry
    assert cfg.pubkeys == ("RWQx",)
    assert cfg.window_title == "A: B updater"


def test_syntax_error_reports_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'product = "x"\nurl = "http://a/"\nchannel = stable\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 3
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}, line 3: not valid TOML")


def test_unknown_key_reports_the_line_and_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, 'url = "http://a/"\n\n[window]\ntitle = "t"\naccnet = "#fff"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 5
    assert str(info.value) == (
        f"{path}, line 5: unknown key [window] 'accnet' (did you mean 'accent'?)"
    )


def test_unknown_table_reports_its_header(tmp_path: Path) -> None:
    path = write(tmp_path, 'url = "http://a/"\n[lanch]\nprogram = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 2
    assert "unknown key 'lanch' (did you mean 'launch'?)" in str(info.value)


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ('url = "http://a/"\nauto_start = "yes"\n', 2, "'auto_start' should be true or false"),
        ('url = "http://a/"\n[launch]\nargs = "--x"\n', 3, "[launch] 'args' should be a list"),
        ('url = "http://a/"\n[launch]\nargs = [1]\n', 3, "should be a list of strings"),
        ('url = "http://a/"\nlaunch = 3\n', 2, "'launch' should be a table"),
        ('product = "x"\n', 0, "missing 'url'"),
        ('url = "ftp://a/"\n', 1, "'url' should start with http:// or https://"),
        ('url = "http://a/"\npubkey = "not base64!"\n', 2, "is not minisign base64"),
        ('url = "http://a/"\npubkey = "RWQ"\npubkeys = []\n', 3, "not both"),
        ('url = "http://a/"\n[window]\naccent = "blue"\n', 3, "should be a colour"),
        ('url = "http://a/"\n[window]\nicon = "nope.png"\n', 3, "icon file 'nope.png' not"),
        ('url = "http://a/"\nproduct = "Dungeon Crawl"\n', 2, "put the name players read in"),
        ('url = "http://a/"\n[install]\nshortcuts = ["start"]\n', 3, "\"menu\" or \"desktop\""),
        ('url = "http://a/"\n[install]\nuninstall_entry = 1\n', 3, "should be true or false"),
    ],
)
def test_wrong_values(tmp_path: Path, body: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, body))
    assert info.value.line == line
    assert words in str(info.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "updater.toml")
    assert str(info.value) == f"{tmp_path / 'updater.toml'}: file not found"
    assert info.value.path == str(tmp_path / "updater.toml")
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'url = "http://a/"\nproduct = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_config_path() == tmp_path / "updater.toml"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "updater.exe"))
    assert default_config_path() == (tmp_path / "bin").resolve() / "updater.toml"


def test_cache_bust_on_by_default_and_off_when_the_file_says(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, 'url = "http://lan/"\n'))
    assert cfg.cache_bust and to_updater_config(cfg, tmp_path).cache_bust
    cfg = load_config(write(tmp_path, 'url = "http://lan/"\ncache_bust = false\n'))
    assert not cfg.cache_bust and not to_updater_config(cfg, tmp_path).cache_bust
    with pytest.raises(ConfigError, match="cache_bust"):
        load_config(write(tmp_path, 'url = "http://lan/"\ncache_bust = "no"\n'))
