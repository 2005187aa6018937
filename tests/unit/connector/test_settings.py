from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.participant_claims import load_claims
from connector.settings import SettingsError, load_settings

BASE = {"api_key": "a-long-enough-key", "dev": True}


def test_defaults_derive_from_port_and_data_dir(tmp_path: Path) -> None:
    s = load_settings({**BASE, "port": 9001, "data_dir": tmp_path}, environ={})
    assert s.public_url == "http://localhost:9001"
    assert s.participant_id == "did:web:localhost%3A9001"
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'sovra.db'}"
    assert s.dsp_url == "http://localhost:9001/api/dsp/2025-1"
    assert s.file_root == tmp_path.resolve() / "files"


def test_flag_beats_env_beats_toml(tmp_path: Path) -> None:
    config = tmp_path / "sovra.toml"
    config.write_text('port = 7000\napi-key = "from-the-toml-file"\ndev = true\n')
    s = load_settings({}, config_file=config, environ={"SOVRA_PORT": "7100"})
    assert (s.port, s.api_key) == (7100, "from-the-toml-file")
    s = load_settings({"port": 7200}, config_file=config, environ={"SOVRA_PORT": "7100"})
    assert s.port == 7200


@pytest.mark.parametrize(("flags", "setting", "fix"), [
    ({"port": 70000}, "port", "1 to 65535"),
    ({"public_url": "ftp://x"}, "public-url", "https"),
    ({"public_url": "http://example.org", "dev": False}, "public-url", "--dev"),
    ({"api_key": ""}, "api-key", "SOVRA_API_KEY"),
    ({"identity": "oauth"}, "identity", "'did' or 'static'"),
    ({"identity": "static"}, "identity", "--static-token"),
    ({"identity": "iam-mock"}, "identity", "--static-peer-id"),
])
def test_bad_settings_name_the_setting_and_the_fix(flags: dict, setting: str, fix: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({**BASE, **flags}, environ={})
    assert raised.value.setting == setting
    assert fix in str(raised.value)


def test_unknown_toml_key_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "sovra.toml"
    config.write_text('prot = 7000\n')
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings(BASE, config_file=config, environ={})


def test_env_value_of_wrong_type_is_named() -> None:
    with pytest.raises(SettingsError, match="'port'"):
        load_settings(BASE, environ={"SOVRA_PORT": "eighty"})


def test_serve_exits_non_zero_on_a_bad_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), "--port", "8181", "--dev"], env={})
    assert result.exit_code == 2
    assert "api-key" in result.output


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "demo", "key"):
        assert command in result.output


def test_public_url_check_warns_when_the_url_does_not_reach_us(caplog: pytest.LogCaptureFixture) -> None:
    from connector.cli import _check_public_url
    from connector.localnet import free_port

    settings = load_settings({**BASE, "public_url": f"http://127.0.0.1:{free_port()}"}, environ={})
    with caplog.at_level("WARNING"):
        assert _check_public_url(settings, attempts=1) is False
    assert "PUBLIC URL CHECK FAILED" in caplog.text and "--public-url" in caplog.text


def test_the_tck_extension_is_off_unless_asked_and_needs_static_identity() -> None:
    assert load_settings(BASE, environ={}).tck is False
    static = {"SOVRA_IDENTITY": "static", "SOVRA_STATIC_TOKEN": "t", "SOVRA_STATIC_PEER_ID": "TCK_PARTICIPANT"}
    assert load_settings(BASE, environ={**static, "SOVRA_TCK": "1"}).tck is True
    with pytest.raises(SettingsError, match="tck.*static identity"):
        load_settings(BASE, environ={"SOVRA_TCK": "1"})


def test_policy_monitor_interval_from_env_and_checked(tmp_path: Path) -> None:
    assert load_settings({**BASE, "data_dir": tmp_path}, environ={}).policy_monitor_interval == 30.0
    env = {"SOVRA_POLICY_MONITOR_INTERVAL": "0.5"}
    assert load_settings({**BASE, "data_dir": tmp_path}, environ=env).policy_monitor_interval == 0.5
    with pytest.raises(SettingsError, match="policy-monitor-interval"):
        load_settings({**BASE, "data_dir": tmp_path, "policy_monitor_interval": -1}, environ={})


def test_participant_claims_file_is_read_and_checked(tmp_path: Path) -> None:
    claims = tmp_path / "claims.json"
    claims.write_text('{"did:web:a": {"membership": "active"}}')
    source = load_claims(load_settings({**BASE, "participant_claims": claims}, environ={}).participant_claims)
    assert source("did:web:a") == {"membership": "active"} and source("did:web:b") == {}
    claims.write_text('["did:web:a"]')
    with pytest.raises(SettingsError, match="participant-claims"):
        load_claims(claims)
