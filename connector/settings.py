"""Connector settings: one name per setting, read from a flag, an env var (SOVRA_<NAME>) or a TOML file.

Precedence: flag > environment > TOML file (`--config`) > default. Every check lives in `Settings.validate`, and a
bad value raises SettingsError naming the setting and the fix; the CLI turns that into a non-zero exit.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from identity.did_web import did_from_url
from identity.errors import InvalidDidError

DSP_PATH = "/api/dsp/2025-1"


class SettingsError(ValueError):
    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting = setting
        super().__init__(f"setting {setting!r}: {problem}; {fix}")


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8181
    public_url: str = ""
    participant_id: str = ""
    data_dir: Path = Path(".sovra")
    database_url: str = ""
    api_key: str = ""
    dev: bool = False
    file_root: Path | None = None
    http_source_allow: tuple[str, ...] = ()
    identity: str = "did"
    static_token: str = ""
    static_peer_id: str = ""
    tck: bool = False
    dsp_body_limit: int = 1024 * 1024
    access_token_ttl: int = 3600
    outbox_workers: int = 8
    outbox_max_attempts: int = 10
    policy_monitor_interval: float = 30.0
    participant_claims: Path | None = None
    log_level: str = "info"
    sandbox_backend: str = "bubblewrap"
    c2d_workers: int = 1
    c2d_standby: int = 1
    c2d_epsilon_budget: float = 10.0
    c2d_min_aggregation: int = 2
    c2d_max_output_bytes: int = 1 << 20
    c2d_work_dir: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    # -- derived -------------------------------------------------------------------------------------------------
    @property
    def dsp_url(self) -> str:
        return self.public_url.rstrip("/") + DSP_PATH

    @property
    def public_api_url(self) -> str:
        return self.public_url.rstrip("/") + "/api/public"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "keys" / "connector-key.pem"

    def with_defaults(self) -> Settings:
        """Fill the settings that derive from others (public URL from port, DID from public URL...)."""
        if not 0 < self.port < 65536:
            raise SettingsError("port", f"{self.port} is not a TCP port", "use a number from 1 to 65535")
        public_url = self.public_url or f"http://localhost:{self.port}"
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(
                "public-url", f"{public_url!r} is not an http(s) URL", "use e.g. https://connector.example.org"
            )
        try:
            participant_id = self.participant_id or did_from_url(public_url)
        except InvalidDidError as exc:
            raise SettingsError("public-url", str(exc), "use a URL like https://host[:port][/path]") from None
        data_dir = self.data_dir.expanduser().resolve()
        return replace(
            self,
            public_url=public_url.rstrip("/"),
            participant_id=participant_id,
            data_dir=data_dir,
            database_url=self.database_url or f"sqlite:///{data_dir / 'sovra.db'}",
            file_root=(self.file_root or data_dir / "files").expanduser().resolve(),
            c2d_work_dir=(self.c2d_work_dir or data_dir / "c2d").expanduser().resolve(),
        )

    def validate(self) -> Settings:
        if not 0 < self.port < 65536:
            raise SettingsError("port", f"{self.port} is not a TCP port", "use a number from 1 to 65535")
        parts = urlsplit(self.public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(
                "public-url", f"{self.public_url!r} is not an http(s) URL", "use e.g. https://connector.example.org"
            )
        if parts.scheme == "http" and not (self.dev and is_loopback_host(parts.hostname)):
            raise SettingsError(
                "public-url",
                f"{self.public_url!r} uses plain http",
                "use https, or pass --dev for a loopback-only development setup",
            )
        if not self.api_key:
            raise SettingsError(
                "api-key", "no management API key is set", "pass --api-key or set SOVRA_API_KEY"
            )
        if len(self.api_key) < 8 and not self.dev:
            raise SettingsError("api-key", "the key is shorter than 8 characters", "use a long random key")
        if self.identity not in ("did", "static", "iam-mock"):
            raise SettingsError("identity", f"{self.identity!r} is not a mode", "use 'did' or 'static' or 'iam-mock'")
        if self.identity == "static" and not (self.static_token and self.static_peer_id):
            raise SettingsError(
                "identity",
                "static mode needs the fixed token and the peer's id",
                "set --static-token and --static-peer-id (conformance testing only)",
            )
        if self.tck and self.identity != "static":
            raise SettingsError(
                "tck",
                "the DSP TCK extension needs the static identity mode (the TCK sends a fixed Authorization value)",
                "add --identity static --static-token <value> --static-peer-id <TCK participant id>",
            )
        if self.identity == "iam-mock" and not self.static_peer_id:
            raise SettingsError(
                "identity",
                "iam-mock mode needs the EDC peer's participant id",
                "set --static-peer-id to the peer's edc.participant.id (interoperability testing only)",
            )
        if self.dsp_body_limit < 1024:
            raise SettingsError("dsp-body-limit", "below 1024 bytes", "use at least 1024 (default 1 MiB)")
        if not self.participant_id:
            raise SettingsError("participant-id", "empty", "leave it unset to use the did:web of --public-url")
        if self.outbox_workers < 1:
            raise SettingsError("outbox-workers", "must be at least 1", "use e.g. 8")
        if self.policy_monitor_interval < 0:
            raise SettingsError("policy-monitor-interval", "must not be negative",
                                "use seconds between re-evaluations, e.g. 30, or 0 to switch the monitor off")
        self._validate_compute()
        return self

    def _validate_compute(self) -> None:
        if self.sandbox_backend not in SANDBOX_BACKENDS:
            raise SettingsError("sandbox-backend", f"{self.sandbox_backend!r} is not a backend",
                                f"use one of: {', '.join(SANDBOX_BACKENDS)} ('none' refuses every compute job)")
        if self.c2d_standby < 0:
            raise SettingsError("c2d-standby", "must not be negative",
                                "use e.g. 1, or 0 to start every sandbox when its job comes")
        if self.c2d_workers < 0:
            raise SettingsError("c2d-workers", "must not be negative", "use e.g. 1, or 0 to run no compute jobs")
        if not self.c2d_epsilon_budget > 0:
            raise SettingsError("c2d-epsilon-budget", "must be above 0",
                                "use the total epsilon one dataset may spend, e.g. 10")
        if self.c2d_min_aggregation < 1:
            raise SettingsError("c2d-min-aggregation", "must be at least 1",
                                "use the smallest number of records an aggregate may cover, e.g. 2")
        if self.c2d_max_output_bytes < 1:
            raise SettingsError("c2d-max-output-bytes", "must be at least 1", "use e.g. 1048576 (1 MiB)")


SANDBOX_BACKENDS = ("bubblewrap", "docker", "none")
_INT = {"port", "dsp_body_limit", "access_token_ttl", "outbox_workers", "outbox_max_attempts", "c2d_workers",
        "c2d_standby", "c2d_min_aggregation", "c2d_max_output_bytes"}
_FLOAT = {"policy_monitor_interval", "c2d_epsilon_budget"}
_BOOL = {"dev", "tck"}
_PATH = {"data_dir", "file_root", "participant_claims", "c2d_work_dir"}
_TUPLE = {"http_source_allow"}
NAMES = tuple(f.name for f in fields(Settings) if f.name != "extra")


def _coerce(name: str, value: Any) -> Any:
    flag = name.replace("_", "-")
    try:
        if name in _INT:
            return int(value)
        if name in _FLOAT:
            return float(value)
        if name in _BOOL:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if name in _PATH:
            return Path(str(value))
        if name in _TUPLE:
            items = value if isinstance(value, list | tuple) else str(value).split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
    except ValueError:
        raise SettingsError(flag, f"{value!r} is not valid", "see `sovra serve --help`") from None
    return str(value)


def load_settings(flags: Mapping[str, Any], *, config_file: Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Merge the sources; unknown keys in the TOML file are an error (a typo must not pass silently)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            raw = tomllib.loads(config_file.read_text())
        except FileNotFoundError:
            raise SettingsError("config", f"file {config_file} does not exist", "check the path") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError("config", f"{config_file} is not valid TOML ({exc})", "fix the file") from None
        for key, value in raw.items():
            name = key.replace("-", "_")
            if name not in NAMES:
                raise SettingsError(key, f"unknown setting in {config_file}", f"use one of: {', '.join(NAMES)}")
            values[name] = _coerce(name, value)
    for name in NAMES:
        env = environ.get("SOVRA_" + name.upper())
        if env is not None:
            values[name] = _coerce(name, env)
    for name, value in flags.items():
        if value is not None and name in NAMES:
            values[name] = _coerce(name, value)
    return Settings(**values).with_defaults().validate()
