"""``kernelkit servers add|list|remove`` and the registry behind it (no server needed)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kernelkit.cli import app
from kernelkit.cli._status import EXIT_NOT_FOUND, EXIT_USAGE
from kernelkit.remote import RemoteServer, ServerConfigError, ServerRegistry

runner = CliRunner()
SECRET = "s3cr3t-token-value"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "reg"
    monkeypatch.setenv("KERNELKIT_SERVERS_DIR", str(directory))
    return directory


def test_add_list_remove_never_print_the_token(home: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n")
    done = runner.invoke(
        app, ["servers", "add", "lab", "http://127.0.0.1:8888", "--token-file", str(token_file)]
    )
    assert done.exit_code == 0, done.output
    done = runner.invoke(
        app, ["servers", "add", "gw", "https://gw.example:8443/base", "--token-env", "GW_TOKEN"]
    )
    assert done.exit_code == 0, done.output
    listed = runner.invoke(app, ["servers", "list"])
    as_json = runner.invoke(app, ["servers", "list", "--json"])
    for output in (listed.output, as_json.output):
        assert SECRET not in output
    assert json.loads(as_json.output) == {
        "servers": {
            "gw": {"url": "https://gw.example:8443/base/", "token": "env:GW_TOKEN"},
            "lab": {"url": "http://127.0.0.1:8888/", "token": "file"},
        }
    }
    stored = home / "tokens" / "lab"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert SECRET not in (home / "servers.json").read_text()
    assert ServerRegistry().get("lab").token() == SECRET
    assert runner.invoke(app, ["servers", "remove", "lab"]).exit_code == 0
    assert not stored.exists()
    assert [s.name for s in ServerRegistry().servers()] == ["gw"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "a/b", "http://127.0.0.1:1/"], "not usable"),
        (["add", "x", "ftp://host/"], "must be http"),
        (["add", "x", "http://127.0.0.1:1/?token=abc"], "--token-file"),
        (["add", "x", "http://h/", "--token-env", "1BAD"], "not an environment variable"),
        (["add", "x", "http://h/", "--token-env", "V", "--token-file", "f"], "not both"),
        (["add", "x", "http://h/", "--token-file", "/nonexistent/token"], "cannot read"),
    ],
)
def test_bad_input_is_a_usage_error(home: Path, args: list[str], message: str) -> None:
    done = runner.invoke(app, ["servers", *args])
    assert done.exit_code == EXIT_USAGE
    assert message in done.output


def test_remove_unknown_and_duplicate_add(home: Path) -> None:
    done = runner.invoke(app, ["servers", "remove", "nope"])
    assert done.exit_code == EXIT_NOT_FOUND
    assert "no server named 'nope'" in done.output
    assert runner.invoke(app, ["servers", "add", "x", "http://h/"]).exit_code == 0
    again = runner.invoke(app, ["servers", "add", "x", "http://h2/"])
    assert again.exit_code == EXIT_USAGE
    assert "registered already" in again.output
    assert runner.invoke(app, ["servers", "add", "x", "http://h2/", "--replace"]).exit_code == 0
    assert ServerRegistry().get("x").url == "http://h2/"


def test_malformed_registry_and_missing_token_env(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home.mkdir()
    (home / "servers.json").write_text("{not json")
    with pytest.raises(ServerConfigError, match="not valid JSON"):
        ServerRegistry().servers()
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    server = RemoteServer("x", "http://h/", token_env="NO_SUCH_TOKEN_VAR")
    with pytest.raises(ServerConfigError, match="NO_SUCH_TOKEN_VAR"):
        server.token()
