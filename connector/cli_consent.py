"""`sovra consent ...` and `sovra subject token ...`: the consent registry and subjects' tokens of a running
connector, through its management API (so the connector's own rules and audit log apply)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer

consent_app = typer.Typer(help="Data subjects' consents per AI provider and purpose (a running connector).",
                          no_args_is_help=True)
subject_app = typer.Typer(help="Data subjects: personal tokens for /api/subject/v1.", no_args_is_help=True)
token_app = typer.Typer(help="Issue or revoke a data subject's personal token.", no_args_is_help=True)
subject_app.add_typer(token_app, name="token")

Opt = typer.Option
Url = Annotated[str, Opt("--url", envvar="SOVRA_URL", help="The connector's base URL [SOVRA_URL].")]
ApiKey = Annotated[str, Opt("--api-key", envvar="SOVRA_API_KEY", help="Management API key [SOVRA_API_KEY].")]
DEFAULT_URL = "http://localhost:8181"


def _call(method: str, url: str, path: str, api_key: str, *, body: dict[str, Any] | None = None,
          params: dict[str, Any] | None = None) -> Any:
    target = url.rstrip("/") + "/api/management" + path
    try:
        response = httpx.request(method, target, json=body, params={k: v for k, v in (params or {}).items()
                                                                    if v is not None},
                                 headers={"X-Api-Key": api_key}, timeout=30.0)
    except httpx.HTTPError as exc:
        typer.secho(f"error: cannot reach {target}: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    try:
        answer = response.json()
    except ValueError:
        answer = response.text
    if response.status_code >= 400:
        message = answer[0].get("message") if isinstance(answer, list) and answer and isinstance(answer[0], dict) \
            else answer
        typer.secho(f"error: HTTP {response.status_code}: {message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    return answer


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


@consent_app.command("grant")
def grant(
    subject: Annotated[str, typer.Argument(help="The data subject's id (the dataset's subject field).")],
    provider: Annotated[str, Opt(help="The AI provider's participant id (DID).")],
    purpose: Annotated[str, Opt(help="Purpose IRI, e.g. https://w3id.org/dpv#ProvidePersonalisedRecommendation.")],
    expires: Annotated[str | None, Opt(help="RFC 3339 time the grant ends, e.g. 2027-01-01T00:00:00Z.")] = None,
    url: Url = DEFAULT_URL, api_key: ApiKey = "",
) -> None:
    """Record that SUBJECT consents to PROVIDER processing her record for PURPOSE."""
    body = {"subject": subject, "provider": provider, "purpose": purpose, "expiresAt": expires}
    _print(_call("POST", url, "/v3/consents/grant", api_key, body={k: v for k, v in body.items() if v is not None}))


@consent_app.command("revoke")
def revoke(
    subject: Annotated[str, typer.Argument(help="The data subject's id.")],
    provider: Annotated[str, Opt(help="The AI provider's participant id (DID).")],
    purpose: Annotated[str, Opt(help="Purpose IRI the consent was given for.")],
    url: Url = DEFAULT_URL, api_key: ApiKey = "",
) -> None:
    """Record that SUBJECT withdraws her consent; no later job reads her record for it."""
    _print(_call("POST", url, "/v3/consents/revoke", api_key,
                 body={"subject": subject, "provider": provider, "purpose": purpose}))


@consent_app.command("list")
def list_consents(
    subject: Annotated[str | None, Opt(help="Only this subject.")] = None,
    provider: Annotated[str | None, Opt(help="Only this AI provider.")] = None,
    purpose: Annotated[str | None, Opt(help="Only this purpose.")] = None,
    events: Annotated[bool, Opt("--events", help="Every grant and revocation instead of the status.")] = False,
    url: Url = DEFAULT_URL, api_key: ApiKey = "",
) -> None:
    """Current consent per (subject, provider, purpose), or with --events the full history."""
    _print(_call("GET", url, "/v3/consents", api_key, params={
        "subject": subject, "provider": provider, "purpose": purpose, "view": "events" if events else "status"}))


@token_app.command("issue")
def token_issue(
    subject: Annotated[str, typer.Argument(help="The data subject's id.")],
    url: Url = DEFAULT_URL, api_key: ApiKey = "",
) -> None:
    """Issue SUBJECT a personal token for /api/subject/v1; it is printed once and never stored in the clear."""
    answer = _call("POST", url, f"/v3/subjects/{subject}/tokens", api_key)
    _print({"subject": answer.get("subject"), "token": answer.get("token")})


@token_app.command("revoke")
def token_revoke(
    subject: Annotated[str, typer.Argument(help="The data subject's id.")],
    url: Url = DEFAULT_URL, api_key: ApiKey = "",
) -> None:
    """Revoke every personal token of SUBJECT."""
    _print(_call("DELETE", url, f"/v3/subjects/{subject}/tokens", api_key))
