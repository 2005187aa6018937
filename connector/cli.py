"""The `sovra` command: run a connector, run the two-connector demo, inspect keys and DIDs."""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from connector.cli_algorithm import algorithm_app
from connector.cli_consent import consent_app, subject_app
from connector.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    name="sovra",
    help="Sovra: a dataspace connector (DSP 2025-1) with compute-to-data. Data stays where it is.",
    no_args_is_help=True,
    add_completion=False,
)
key_app = typer.Typer(help="The connector's signing key and its did:web identity.", no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(algorithm_app, name="algorithm")
app.add_typer(consent_app, name="consent")
app.add_typer(subject_app, name="subject")

Opt = typer.Option


# How long an idle client connection stays open. It must outlast the idle time after which common clients stop
# reusing a connection (httpx: 5 s, as uvicorn's default here was): at equal limits a client reused a connection
# just as we closed it, and the request died with "connection reset" or "server disconnected" (seen under
# benchmark (a) once bursts came about 2.5 s apart, so that a connection sat idle for two of them).
KEEP_ALIVE_SECONDS = 30


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _settings(flags: dict[str, Any], config: Path | None) -> Settings:
    try:
        return load_settings(flags, config_file=config)
    except SettingsError as exc:
        _fail(str(exc))
        raise  # unreachable, keeps type checkers calm


@app.command()
def serve(
    config: Annotated[Path | None, Opt("--config", help="TOML file with settings (same names as the flags).")] = None,
    host: Annotated[str | None, Opt(help="Interface to listen on [SOVRA_HOST, default 127.0.0.1].")] = None,
    port: Annotated[int | None, Opt(help="TCP port [SOVRA_PORT, default 8181].")] = None,
    public_url: Annotated[str | None, Opt(help="URL peers use to reach us; callbacks derive from it "
                                              "[SOVRA_PUBLIC_URL, default http://localhost:<port>].")] = None,
    participant_id: Annotated[str | None, Opt(help="Our participant id [default: did:web of the public URL].")] = None,
    data_dir: Annotated[Path | None, Opt(help="Keys, SQLite database, files "
                                               "[SOVRA_DATA_DIR, default ./.sovra].")] = None,
    database_url: Annotated[str | None, Opt(help="sqlite:///... or postgresql+psycopg://... "
                                                 "[default: SQLite in the data dir].")] = None,
    api_key: Annotated[str | None, Opt(help="Key the management API requires in X-Api-Key [SOVRA_API_KEY].")] = None,
    dev: Annotated[bool | None, Opt("--dev", help="Allow plain http on loopback (development only).")] = None,
    file_root: Annotated[Path | None, Opt(help="Only files under this folder may be assets "
                                               "[default <data-dir>/files].")] = None,
    http_source_allow: Annotated[str | None, Opt(help="Comma-separated URL prefixes or host[:port] that "
                                                      "HttpData assets may proxy.")] = None,
    identity: Annotated[str | None, Opt(help="'did' (default), or 'static' / 'iam-mock' "
                                                   "(conformance and EDC interop tests only).")] = None,
    static_token: Annotated[str | None, Opt(help="Static mode: the fixed Authorization value.")] = None,
    static_peer_id: Annotated[str | None, Opt(help="static/iam-mock: the peer's participant id.")] = None,
    tck: Annotated[bool | None, Opt("--tck", help="DSP TCK test extension: seed, scripted moves, /tck hooks "
                                                  "(conformance tests only; needs --identity static).")] = None,
    dsp_body_limit: Annotated[int | None, Opt(help="Largest DSP request body in bytes [default 1 MiB].")] = None,
    outbox_workers: Annotated[int | None, Opt(help="Threads that deliver DSP messages [default 8].")] = None,
    policy_monitor_interval: Annotated[float | None, Opt(help="Seconds between re-evaluations of the agreements "
                                                          "of started transfers; 0 switches the monitor off "
                                                          "[SOVRA_POLICY_MONITOR_INTERVAL, default 30].")] = None,
    participant_claims: Annotated[Path | None, Opt(help="JSON file: participant DID -> claims (membership, role, "
                                                        "country) that policies may test.")] = None,
    log_level: Annotated[str | None, Opt(help="debug, info, warning or error.")] = None,
    sandbox_backend: Annotated[str | None, Opt(help="Compute-to-data sandbox: bubblewrap, docker or none (none "
                                                    "refuses every job) [default bubblewrap].")] = None,
    c2d_workers: Annotated[int | None, Opt(help="Threads that run compute jobs [default 1].")] = None,
    c2d_standby: Annotated[int | None, Opt(help="Pre-started single-use bubblewrap sandboxes kept ready for onnx "
                                                "jobs (about 60 MB each); 0 starts each when its job comes "
                                                "[default 1].")] = None,
    c2d_epsilon_budget: Annotated[float | None, Opt(help="Differential-privacy budget per dataset unless the "
                                                         "asset sets c2d:epsilonBudget [default 10].")] = None,
    c2d_min_aggregation: Annotated[int | None, Opt(help="Floor under any job's minAggregationSize "
                                                        "[default 2].")] = None,
    c2d_max_output_bytes: Annotated[int | None, Opt(help="Largest released output of a job in bytes "
                                                         "[default 1 MiB].")] = None,
    c2d_work_dir: Annotated[Path | None, Opt(help="Where jobs unpack algorithms and stage inputs "
                                                  "[default <data-dir>/c2d].")] = None,
) -> None:
    """Run one connector: DSP, management API, data plane and DID document on one port."""
    flags = {k: v for k, v in locals().items() if k != "config"}
    settings = _settings(flags, config)
    _run(settings)


def _run(settings: Settings) -> None:
    import uvicorn

    from connector.container import Connector
    from connector.http.app import create_app
    from connector.persistence.database import DatabaseUrlError
    from identity.errors import IdentityError

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("sovra")
    if settings.dev:
        log.warning("--dev: plain http is accepted for did:web and callbacks on loopback; never use it in production")
    try:
        connector = Connector(settings)
    except (DatabaseUrlError, IdentityError, OSError) as exc:
        _fail(str(exc))
        return
    threading.Thread(target=_check_public_url, args=(settings,), daemon=True).start()
    log.info("participant %s, DSP at %s, management API at %s/api/management/v3", settings.participant_id,
             settings.dsp_url, settings.public_url)
    app = create_app(connector)
    _tune_gc()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                access_log=settings.log_level == "debug", timeout_keep_alive=KEEP_ALIVE_SECONDS)



def _tune_gc() -> None:
    """The start-up objects (modules, routes, schemas, contexts) never become garbage: freeze them out of the
    collector's scans. And collect the youngest generation less often: a compute job allocates hundreds of
    thousands of small objects (records, result rows), and at the default threshold (700) the collector's passes,
    with their full scans of every long-lived object, took a fifth of a job's gate."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _check_public_url(settings: Settings, attempts: int = 20) -> bool:
    """Warn loudly when our public URL does not reach us: peers would never deliver their callbacks."""
    import time

    import httpx

    log = logging.getLogger("sovra")
    url = settings.public_url + "/.well-known/dspace-version"
    problem = "no answer"
    for _ in range(attempts):
        time.sleep(0.25)
        try:
            answer = httpx.get(url, timeout=2.0)
            versions = answer.json().get("protocolVersions", [])
            if any(v.get("serviceId") == settings.participant_id + "#dsp" for v in versions):
                return True
            problem = f"it answered, but not as this connector (HTTP {answer.status_code})"
        except (httpx.HTTPError, ValueError) as exc:
            problem = str(exc) or type(exc).__name__
    log.warning("PUBLIC URL CHECK FAILED: %s does not reach this connector (%s). Peers send every callback to "
                "%s; negotiations will stay REQUESTED until --public-url is right.", url, problem, settings.dsp_url)
    return False


@app.command()
def demo(
    keep: Annotated[bool, Opt(help="Leave both connectors running until Ctrl-C.")] = False,
    workdir: Annotated[Path | None, Opt(help="Where the two connectors keep their data [a temp dir].")] = None,
) -> None:
    """Run the compute-to-data student scenario on two connectors (a school app and an AI provider)."""
    from connector.demo import run_demo

    sys.exit(run_demo(keep=keep, workdir=workdir))


@key_app.command("show")
def key_show(
    data_dir: Annotated[Path, Opt(help="The connector's data dir.")] = Path(".sovra"),
    public_url: Annotated[str, Opt(help="The connector's public URL.")] = "http://localhost:8181",
) -> None:
    """Print the DID, key id and public JWK (creates the key if the data dir has none)."""
    from identity.did_web import did_from_url
    from identity.keys import load_or_create_signing_key, public_jwk

    settings = Settings(data_dir=data_dir, public_url=public_url).with_defaults()
    key = load_or_create_signing_key(settings.key_path)
    typer.echo(json.dumps({"did": did_from_url(public_url), "kid": key.kid, "keyFile": str(settings.key_path),
                           "publicJwk": public_jwk(key)}, indent=2))


@key_app.command("did-document")
def key_did_document(
    data_dir: Annotated[Path, Opt(help="The connector's data dir.")] = Path(".sovra"),
    public_url: Annotated[str, Opt(help="The connector's public URL.")] = "http://localhost:8181",
) -> None:
    """Print the did:web document the connector serves at /.well-known/did.json."""
    from identity.did_web import build_did_document, did_from_url
    from identity.keys import load_or_create_signing_key, public_jwk

    settings = Settings(data_dir=data_dir, public_url=public_url).with_defaults()
    key = load_or_create_signing_key(settings.key_path)
    did = did_from_url(public_url)
    typer.echo(json.dumps(build_did_document(did, public_jwk(key), service_endpoints={
        "DataService": settings.dsp_url}), indent=2))


def main() -> None:  # pragma: no cover - console entry
    app()
