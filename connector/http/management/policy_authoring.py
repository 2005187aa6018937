"""Policy authoring: /v3/policies/validate, /v3/policies/evaluate and /v3/policies/templates (Sovra extension).

Bodies are read as sent, not normalised: the validator must see the author's own JSON-LD (a term no context
defines, the old ODRL context's `neq`) to point at it. Evaluation goes through the connector's policy engine,
exactly as the scopes do, with the request and the state the author supplies.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from connector.http.body import read_json
from connector.http.deps import ConnectorDep
from connector.http.management.errors import ManagementRequestError, invalid
from connector.http.management.jsonld_io import BODY_LIMIT
from connector.http.management.schemas import (
    ApiError,
    PolicyEvaluationInput,
    TemplateParametersInput,
    parse,
    request_body,
)
from connector.protocol.jsonld import load_document
from policies import TEMPLATES, PolicyContext, PolicyError, Scope, template, validate
from policies import parse as parse_policy

router = APIRouter(prefix="/v3/policies", tags=["Policy authoring"])
_ERRORS = {400: {"model": list[ApiError]}}


async def _raw_object(request: Request) -> dict[str, Any]:
    raw = await read_json(request, limit=BODY_LIMIT)
    if not isinstance(raw, dict):
        raise invalid(None, "the body must be a JSON object")
    return raw


RawBody = Annotated[dict[str, Any], Depends(_raw_object)]


def issues_of(policy: Any) -> list[dict[str, str]]:
    return [issue.to_json() for issue in validate(policy, document_loader=load_document)]


@router.post("/validate", summary="Check an ODRL policy (JSON-LD): every problem with its JSON pointer and fix")
def validate_policy(body: RawBody) -> JSONResponse:
    issues = issues_of(body)
    return JSONResponse({"valid": not any(i["severity"] == "error" for i in issues), "issues": issues})


@router.post("/evaluate", summary="Decide a policy for a request and a state, with the compliance report",
             responses=_ERRORS, openapi_extra=request_body(PolicyEvaluationInput))
def evaluate_policy(body: RawBody, connector: ConnectorDep) -> JSONResponse:
    given = parse(PolicyEvaluationInput, body)
    try:
        scope = Scope(given.scope)
    except ValueError:
        raise invalid("/scope", f"is {given.scope!r}; use one of {', '.join(s.value for s in Scope)}") from None
    issues = issues_of(given.policy)
    try:
        parse_policy(given.policy, document_loader=load_document)
    except PolicyError as exc:
        raise ManagementRequestError(400, "invalid.request", f"field /policy{exc.pointer} {exc.problem}",
                                     path=f"/policy{exc.pointer}", invalid_value=issues) from None
    state = given.state
    extra = {"use_count": state.use_count, "dp_epsilon_spent": state.dp_epsilon_spent,
             "consent_given": state.consent_given, "part_of": state.part_of, "duty_states": state.duty_states,
             "facts": state.facts}
    context = PolicyContext(
        scope=scope, participant_id=given.request.assignee or "", now=state.now or connector.rt.clock(),
        agreement_start=state.agreement_start, claims=state.claims, action=given.request.action,
        target=given.request.target, parameters=given.request.context,
        state={k: v for k, v in extra.items() if v is not None},
    )
    decision = connector.rt.policies.evaluate(given.policy, context)
    return JSONResponse({
        "decision": "permit" if decision.permitted else "deny", "reasons": list(decision.reasons),
        "obligations": [dict(o) for o in decision.obligations], "report": decision.report, "issues": issues,
    })


def _known_template(name: str) -> str:
    if name not in TEMPLATES:
        raise ManagementRequestError(404, "not.found", f"no template {name!r}; choose one of "
                                                       f"{', '.join(sorted(TEMPLATES))}", invalid_value=name)
    return name


def _template_entry(name: str) -> dict[str, Any]:
    entry = TEMPLATES[name]
    return {"name": name, "description": entry.get("description", ""), "parameters": entry["parameters"],
            "policy": entry["policy"]}


@router.get("/templates", summary="Ready-made policies (time window, purpose, membership, compute-only)")
def list_templates() -> JSONResponse:
    return JSONResponse([_template_entry(name) for name in sorted(TEMPLATES)])


@router.get("/templates/{name}", summary="One template, with the parameters it takes",
            responses={404: {"model": list[ApiError]}})
def get_template(name: str) -> JSONResponse:
    return JSONResponse(_template_entry(_known_template(name)))


@router.post("/templates/{name}", summary="Fill a template with parameters: the policy, ready to store",
             responses={404: {"model": list[ApiError]}, **_ERRORS},
             openapi_extra=request_body(TemplateParametersInput))
def fill_template(name: str, body: RawBody) -> JSONResponse:
    wanted = TEMPLATES[_known_template(name)]["parameters"]
    missing = sorted(set(wanted) - body.keys())
    if missing:
        raise invalid(f"/{missing[0]}", f"is required by template {name!r} ({wanted[missing[0]]})")
    unknown = sorted(body.keys() - set(wanted))
    if unknown:
        raise invalid(f"/{unknown[0]}", f"is not a parameter of template {name!r}; it takes "
                                        f"{', '.join(sorted(wanted))}")
    policy = template(name, **body)
    issues = issues_of(policy)
    errors = [i for i in issues if i["severity"] == "error"]
    if errors:
        first = errors[0]
        raise ManagementRequestError(400, "invalid.request", f"the parameters give an invalid policy: field "
                                     f"{first['pointer']} {first['problem']} (fix: {first['fix']})",
                                     path=first["pointer"], invalid_value=errors)
    return JSONResponse({"policy": policy, "issues": issues})
