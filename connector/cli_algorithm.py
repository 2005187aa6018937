"""`sovra algorithm pack|sign|verify`: publish a signed algorithm bundle and check one, outside any running connector.

Signing uses the connector's own key, found in its data dir the way `sovra serve` finds it (settings.key_path), and
its DID (participant id, or the did:web of the public URL), so the envelope verifies against the DID document that
connector serves. Verification resolves the signer's did:web over HTTP with the connector's resolver, or reads a
DID document file (offline checks, tests).
"""

from __future__ import annotations

import json
import tempfile
import tomllib
from collections.abc import Mapping
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from compute_to_data.bundle import BundleError, digest_file, directory_manifest, pack, read_manifest, unpack
from compute_to_data.manifest import Manifest, ManifestError, manifest_to_json
from compute_to_data.signing import SignatureCheckError, bundle_statement, sign_statement, verify_artifact
from connector.settings import Settings, SettingsError

algorithm_app = typer.Typer(help="Algorithm bundles for compute-to-data: pack, sign with the connector's key, verify.",
                            no_args_is_help=True)
Opt = typer.Option
Arg = typer.Argument
ARCHIVE_SUFFIX = ".tar.gz"
ENVELOPE_SUFFIX = ".dsse.json"


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _echo(document: Mapping[str, Any]) -> None:
    typer.echo(json.dumps(document, indent=2))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def envelope_path_for(archive: Path) -> Path:
    """`x.tar.gz` -> `x.dsse.json`, next to it."""
    name = archive.name.removesuffix(ARCHIVE_SUFFIX) if archive.name.endswith(ARCHIVE_SUFFIX) else archive.stem
    return archive.with_name(name + ENVELOPE_SUFFIX)


def _pack_directory(directory: Path, out: Path | None) -> tuple[Path, str, Manifest]:
    try:
        manifest = directory_manifest(directory)
        target = out or directory.resolve().parent / f"{manifest.name}-{manifest.version}{ARCHIVE_SUFFIX}"
        return target, pack(directory, target), manifest
    except (BundleError, ManifestError, OSError) as exc:
        _fail(str(exc))
        raise  # unreachable


@algorithm_app.command("pack")
def pack_command(
    directory: Annotated[Path, Arg(help="Folder with sovra-algorithm.json and the algorithm's files.")],
    out: Annotated[Path | None, Opt("-o", "--out", help="The .tar.gz to write [<name>-<version>.tar.gz next to "
                                                        "the folder].")] = None,
) -> None:
    """Pack a folder into a deterministic .tar.gz (same folder, same bytes) and print its digest."""
    archive, digest, manifest = _pack_directory(directory, out)
    _echo({"bundle": str(archive), "digest": digest, "name": manifest.name, "version": manifest.version,
           "kind": manifest.kind})


def _signing_identity(data_dir: Path | None, public_url: str | None, participant_id: str | None,
                      port: int | None, config: Path | None) -> Settings:
    """The settings `sovra serve` would derive for key and DID: flag/env first, then the TOML file, then defaults."""
    values: dict[str, Any] = {"data_dir": data_dir, "public_url": public_url, "participant_id": participant_id,
                              "port": port}
    if config is not None:
        try:
            raw = tomllib.loads(config.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            _fail(f"cannot read the settings file {config} ({exc})")
        for key, value in raw.items():
            name = key.replace("-", "_")
            if name in values and values[name] is None:
                values[name] = Path(value) if name == "data_dir" else int(value) if name == "port" else str(value)
    try:
        return Settings(**{k: v for k, v in values.items() if v is not None}).with_defaults()
    except SettingsError as exc:
        _fail(str(exc))
        raise


@algorithm_app.command("sign")
def sign_command(
    artifact: Annotated[Path, Arg(help="A bundle folder (packed first) or a packed .tar.gz.")],
    data_dir: Annotated[Path | None, Opt(envvar="SOVRA_DATA_DIR", help="The connector's data dir: its key "
                                         "<data-dir>/keys/connector-key.pem signs [default ./.sovra].")] = None,
    participant_id: Annotated[str | None, Opt(envvar="SOVRA_PARTICIPANT_ID", help="The signer DID [default: "
                                              "did:web of the public URL, as sovra serve].")] = None,
    public_url: Annotated[str | None, Opt(envvar="SOVRA_PUBLIC_URL", help="The connector's public URL "
                                          "[default http://localhost:<port>].")] = None,
    port: Annotated[int | None, Opt(envvar="SOVRA_PORT", help="Port, for the default public URL.")] = None,
    config: Annotated[Path | None, Opt("--config", help="The connector's TOML settings file.")] = None,
    out: Annotated[Path | None, Opt("-o", "--out", help="Where a packed folder goes [<name>-<version>.tar.gz "
                                                        "next to it].")] = None,
) -> None:
    """Sign a bundle with the connector's key: writes <bundle>.tar.gz and <bundle>.dsse.json side by side."""
    from identity.errors import IdentityError
    from identity.keys import load_or_create_signing_key

    settings = _signing_identity(data_dir, public_url, participant_id, port, config)
    started = _now()
    if artifact.is_dir():
        archive, digest, manifest = _pack_directory(artifact, out)
    elif artifact.is_file():
        archive, manifest = artifact, _checked_archive(artifact)
        digest = digest_file(archive)
    else:
        _fail(f"{artifact} is neither a folder nor a file")
        return
    if not settings.key_path.exists():
        typer.secho(f"note: no key at {settings.key_path}; creating one (sovra serve will use the same key)",
                    err=True)
    try:
        key = load_or_create_signing_key(settings.key_path)
    except IdentityError as exc:
        _fail(str(exc))
        return
    statement = bundle_statement(archive.name, digest, manifest_to_json(manifest), settings.participant_id,
                                 started=started, finished=_now())
    envelope = sign_statement(statement, key, settings.participant_id)
    envelope_path = envelope_path_for(archive)
    envelope_path.write_text(json.dumps(envelope, indent=2) + "\n")
    _echo({"bundle": str(archive), "envelope": str(envelope_path), "digest": digest,
           "signer": settings.participant_id, "keyId": envelope["signatures"][0]["keyid"],
           "name": manifest.name, "version": manifest.version})


def _checked_archive(archive: Path) -> Manifest:
    """Unpack into a scratch folder: a bundle that would be refused at the data provider is never signed."""
    try:
        with tempfile.TemporaryDirectory(prefix="sovra-check-") as scratch:
            return unpack(archive, Path(scratch) / "bundle")
    except (BundleError, ManifestError) as exc:
        _fail(str(exc))
        raise


@algorithm_app.command("verify")
def verify_command(
    archive: Annotated[Path, Arg(help="The packed .tar.gz.")],
    envelope: Annotated[Path | None, Opt(help="The DSSE envelope [<bundle>.dsse.json next to it].")] = None,
    did_document: Annotated[Path | None, Opt(help="Check against this DID document file instead of resolving "
                                                  "the signer's did:web over HTTP.")] = None,
    dev: Annotated[bool, Opt("--dev", help="Allow plain http did:web resolution on loopback "
                                           "(development only).")] = False,
) -> None:
    """Check digest, signature, signer DID and provenance: exit 0 with signer and digest, or 1 naming the check."""
    envelope_file = envelope or envelope_path_for(archive)
    for path in (archive, envelope_file):
        if not path.is_file():
            _fail(f"{path} does not exist")
    try:
        document = json.loads(envelope_file.read_text())
    except (ValueError, OSError) as exc:
        _failed(SignatureCheckError("envelope", f"{envelope_file} is not JSON ({exc})"))
        return
    try:
        with ExitStack() as stack:
            verified = verify_artifact(document, digest_file(archive), _resolver(did_document, dev, stack))
        manifest = read_manifest(archive)
    except SignatureCheckError as exc:
        _failed(exc)
        return
    except (BundleError, ManifestError) as exc:
        _failed(SignatureCheckError("bundle", str(exc)))
        return
    _echo({"verified": True, "signer": verified.signer_did, "keyId": verified.key_id, "digest": verified.digest,
           "subject": verified.subject_name, "name": manifest.name, "version": manifest.version,
           "kind": manifest.kind})


def _failed(error: SignatureCheckError) -> None:
    _echo({"verified": False, "check": error.check, "reason": error.reason})
    _fail(f"verification failed at check '{error.check}': {error.reason}", code=1)


def _resolver(did_document: Path | None, dev: bool, stack: ExitStack) -> Any:
    if did_document is not None:
        try:
            document = json.loads(did_document.read_text())
        except (ValueError, OSError) as exc:
            _fail(f"cannot read the DID document {did_document} ({exc})")

        def from_file(did: str) -> Mapping[str, Any]:
            if not isinstance(document, dict) or document.get("id") != did:
                raise ValueError(f"the DID document in {did_document} is not {did}'s")
            return document

        return from_file
    import httpx

    from connector.identity_service import DidResolver

    return DidResolver(stack.enter_context(httpx.Client()), allow_http_loopback=dev).resolve
