"""`sovra demo`: the student scenario of compute-to-data, on two real connectors (SQLite, real HTTP, bubblewrap).

A (a school's app) holds three students' skills; B (an AI provider) offers career guidance with a signed ONNX
model. Two students consent in A, the third does not. B negotiates a compute-only contract with A and asks for a
job; A pulls B's algorithm through its own DSP contract with B, verifies its signature, runs it in a sandbox on the
consenting records only, gates the output and releases to B only the noised aggregate, with a signed receipt. Each
consenting student then reads her own result in A with her personal token; the third has nothing. Every check
that fails makes the demo exit non-zero.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from connector import demo_student as S
from connector.localnet import ConnectorProcess, ManagementClient

console = Console()

C2D = "https://w3id.org/sovra/c2d/v1#"
PURPOSE = "https://w3id.org/dpv#ServicePersonalisation"
EPSILON = 1.0
FINAL = {"RELEASED", "REJECTED", "FAILED"}


class DemoCheckFailed(RuntimeError):
    pass


def step(number: int, title: str, detail: str = "") -> None:
    console.print(f"\n[bold cyan]{number}.[/] [bold]{title}[/]" + (f"  [dim]{detail}[/]" if detail else ""))


def check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoCheckFailed(what)
    console.print(f"   [green]✓[/] {what}")


def run_demo(*, keep: bool = False, workdir: Path | None = None) -> int:
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="sovra-demo-"))
    school = ConnectorProcess("school", root / "school")
    ai = ConnectorProcess("ai-provider", root / "ai-provider")
    try:
        step(1, "Starting two connectors", f"data in {root}")
        school.start()
        ai.start()
        console.print(f"   A  school app   {school.url}  [dim]{school.did}[/]")
        console.print(f"   B  AI provider  {ai.url}  [dim]{ai.did}[/]")
        walk(school, ai, root)
        console.print(Panel.fit("[bold green]Demo complete:[/] B's signed model ran at A on the two consenting "
                                "students only; each reads her result in A, B holds only the noised aggregate "
                                "and a receipt it verified."))
        if keep:
            console.print("Both connectors keep running; press Ctrl-C to stop.")
            while True:
                time.sleep(3600)
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # show the reason and where the logs are, not a traceback
        console.print(f"\n[bold red]Demo failed:[/] {exc}")
        console.print(f"Logs: {school.log_path} and {ai.log_path}")
        return 1
    finally:
        school.stop()
        ai.stop()
        if workdir is None and not keep:
            shutil.rmtree(root, ignore_errors=True)


def walk(school: ConnectorProcess, ai: ConnectorProcess, root: Path) -> None:
    a, b = school.management(), ai.management()
    try:
        publish_algorithm(ai, b, root, number=2)
        publish_dataset(school, ai, a, number=3)
        tokens = consent(school, ai, a, number=4)
        agreement_id = negotiate(school, ai, b, number=5)
        refuse_raw_transfer(school, b, agreement_id, number=6)
        job = run_job(school, b, agreement_id, number=7)
        show_release(school, ai, b, job, number=8)
        students_read_results(school, a, job, tokens, number=9)
    finally:
        a.close()
        b.close()


def publish_algorithm(ai: ConnectorProcess, b: ManagementClient, root: Path, *, number: int) -> None:
    step(number, "B builds its career-matching model and signs it",
         "onnx helper API; sovra algorithm sign: DSSE + in-toto + SLSA")
    signed = S.build_signed_bundle(root / "build", ai.file_root / "algorithms-src", data_dir=ai.data_dir,
                                   public_url=ai.url)
    published: Any = b.ok(b.post("/v3/algorithms", {"@id": "career-match", "archive": signed["bundle"],
                                                    "envelope": signed["envelope"]}))
    check(published["digest"] == signed["digest"], f"B verified and published {Path(signed['bundle']).name} "
                                                   f"({published['digest'][:19]}...), signed by {published['signer']}")
    b.ok(b.post("/v3/policydefinitions", {"@id": "algorithm-use", "policy": {
        "@type": "Set", "permission": [{"action": "use"}], "prohibition": [{"action": "distribute"}]}}))
    b.ok(b.post("/v3/contractdefinitions", {
        "@id": "career-match-offer", "accessPolicyId": "algorithm-use", "contractPolicyId": "algorithm-use",
        "assetsSelector": [{"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=",
                            "operandRight": "career-match"}]}))
    console.print("   published as dataset [bold]career-match[/] in B's catalog (use, no redistribution)")


def compute_only_policy(ai_did: str) -> dict[str, Any]:
    """Compute only, by algorithms B signed, epsilon <= 1 per job, groups of at least 2, for the stated purpose.

    Numbers are written as strings: DSP 2025-1's schema admits no bare number as rightOperand. Consent on record
    and the epsilon spent are facts of each job: the negotiation leaves them to the job's own decision.
    """
    return {"@type": "Set", "profile": "https://w3id.org/sovra/c2d/v1", "permission": [{
        "action": "c2d:compute", "constraint": [{"and": [
            {"leftOperand": "c2d:algorithmSigner", "operator": "isAnyOf", "rightOperand": [ai_did]},
            {"leftOperand": "c2d:dpEpsilon", "operator": "lteq", "rightOperand": str(EPSILON)},
            {"leftOperand": "c2d:minAggregationSize", "operator": "gteq", "rightOperand": "2"},
            {"leftOperand": "c2d:dpEpsilonBudget", "operator": "lteq", "rightOperand": "5.0"},
            {"leftOperand": "c2d:consentRequired", "operator": "eq", "rightOperand": "true"},
            {"leftOperand": "purpose", "operator": "isA", "rightOperand": PURPOSE},
        ]}]}], "prohibition": [{"action": "distribute"}]}


def request_context(ai_did: str) -> dict[str, Any]:
    """What B declares when it negotiates: its purpose and the kind of jobs it will ask for."""
    return {"purpose": PURPOSE, "algorithmSigner": ai_did, "dpEpsilon": EPSILON, "minAggregationSize": 2}


def publish_dataset(school: ConnectorProcess, ai: ConnectorProcess, a: ManagementClient, *, number: int) -> None:
    step(number, "A publishes the students' skills with a compute-only offer", "no odrl:use: raw data never leaves")
    path = school.file_root / "students.jsonl"
    S.write_students(path)
    a.ok(a.post("/v3/assets", {"@id": "student-skills", "properties": {
        "name": "Skills of three students", "contenttype": "application/x-ndjson",
        C2D + "subjectField": "subject", C2D + "epsilonBudget": 5},
        "dataAddress": {"type": "File", "path": str(path)}}))
    a.ok(a.post("/v3/policydefinitions", {"@id": "compute-only", "policy": compute_only_policy(ai.did)}))
    a.ok(a.post("/v3/policydefinitions", {"@id": "open", "policy": {"@type": "Set",
                                                                    "permission": [{"action": "use"}]}}))
    a.ok(a.post("/v3/contractdefinitions", {
        "@id": "skills-compute", "accessPolicyId": "open", "contractPolicyId": "compute-only",
        "assetsSelector": [{"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=",
                            "operandRight": "student-skills"}]}))
    table = Table("subject", "name", *S.SKILLS, title="students.jsonl (stays in A)", title_justify="left")
    for student in S.STUDENTS:
        table.add_row(student["subject"], student["name"], *(f"{student[s]:.1f}" for s in S.SKILLS))
    console.print(table)


def consent(school: ConnectorProcess, ai: ConnectorProcess, a: ManagementClient, *, number: int) -> dict[str, str]:
    step(number, "Students decide in A", f"consent to {ai.did} for {PURPOSE.rsplit('#', 1)[-1]}")
    tokens: dict[str, str] = {}
    for student in S.STUDENTS:
        subject = student["subject"]
        issued: Any = a.ok(a.post(f"/v3/subjects/{subject}/tokens"))
        tokens[subject] = issued["token"]
        if subject in S.CONSENTING:
            response = httpx.post(school.url + "/api/subject/v1/consents",
                                  json={"provider": ai.did, "purpose": PURPOSE, "action": "grant"},
                                  headers={"Authorization": f"Bearer {tokens[subject]}"}, timeout=10)
            if response.status_code >= 400:
                raise DemoCheckFailed(f"{subject} could not grant consent: {response.status_code} {response.text}")
            console.print(f"   {student['name']} ({subject}) [green]grants[/] consent with her personal token")
        else:
            console.print(f"   {student['name']} ({subject}) gives [yellow]no[/] consent")
    return tokens


def negotiate(school: ConnectorProcess, ai: ConnectorProcess, b: ManagementClient, *, number: int) -> str:
    step(number, "B negotiates the compute-only contract with A", "DSP, declared purpose in requestContext")
    catalog: Any = b.ok(b.post("/v3/catalog/request", {"counterPartyAddress": school.dsp_url,
                                                       "counterPartyId": school.did}))
    dataset = next(d for d in catalog.get("dataset", []) if d["@id"] == "student-skills")
    offer = dataset["hasPolicy"][0]
    negotiation: Any = b.ok(b.post("/v3/contractnegotiations", {
        "counterPartyAddress": school.dsp_url, "counterPartyId": school.did,
        "protocol": "dataspace-protocol-http:2025-1", "requestContext": request_context(ai.did),
        "policy": {**offer, "target": "student-skills", "assigner": school.did}}))
    final = b.wait_state(f"/v3/contractnegotiations/{negotiation['@id']}", {"FINALIZED", "TERMINATED"})
    check(final["state"] == "FINALIZED", f"negotiation FINALIZED (agreement {final.get('contractAgreementId')}, "
                                         f"{final.get('errorDetail') or 'no error'})")
    return str(final["contractAgreementId"])


def refuse_raw_transfer(school: ConnectorProcess, b: ManagementClient, agreement_id: str, *, number: int) -> None:
    step(number, "B tries to pull the raw data anyway", "HttpData-PULL under the compute-only agreement")
    transfer: Any = b.ok(b.post("/v3/transferprocesses", {
        "counterPartyAddress": school.dsp_url, "contractId": agreement_id, "transferType": "HttpData-PULL",
        "protocol": "dataspace-protocol-http:2025-1"}))
    final = b.wait_state(f"/v3/transferprocesses/{transfer['@id']}", {"TERMINATED", "STARTED"})
    check(final["state"] == "TERMINATED", "A refuses the raw transfer: " + str(final.get("errorDetail", ""))[:110])


def run_job(school: ConnectorProcess, b: ManagementClient, agreement_id: str, *, number: int) -> dict[str, Any]:
    step(number, "B asks A to run its model", "POST /v3/computejobs -> DSP TransferRequest, format Compute-PULL")
    created: Any = b.ok(b.post("/v3/computejobs", {
        "agreementId": agreement_id, "counterPartyAddress": school.dsp_url, "algorithm": "career-match",
        "parameters": {"dpEpsilon": EPSILON, "minAggregationSize": 2}}))
    console.print(f"   job [dim]{created['@id']}[/] {created['state']}")
    job = wait_job(b, str(created["@id"]))
    for event in job.get("events", []):
        console.print(f"   [dim]{event.get('at', '')[11:19]}[/] {event.get('state', ''):9} {event.get('message', '')}")
    check(job["state"] == "RELEASED", f"job RELEASED at B (reason: {job.get('reason')})")
    return job


def wait_job(client: ManagementClient, job_id: str, *, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        job: Any = client.ok(client.get(f"/v3/computejobs/{job_id}"))
        if job["state"] != seen:
            seen = job["state"]
            console.print(f"   B sees {seen}")
        if job["state"] in FINAL:
            return dict(job)
        time.sleep(0.3)
    raise DemoCheckFailed(f"job {job_id} did not finish within {timeout:.0f} s (last state {seen})")


def show_release(school: ConnectorProcess, ai: ConnectorProcess, b: ManagementClient, job: dict[str, Any], *,
                 number: int) -> None:
    step(number, "What B received", "only the gated, noised aggregate and A's signed receipt")
    outputs: Any = b.ok(b.get(f"/v3/computejobs/{job['@id']}/outputs"))
    console.print_json(json.dumps(outputs))
    check(set(outputs) <= {f"mean_{c}" for c in S.CAREERS}, "no per-student value left A (aggregates only)")
    check(not any(s["subject"] in json.dumps(outputs) for s in S.STUDENTS), "no student id in B's outputs")
    check(job.get("recordCount") == len(S.CONSENTING),
          f"the job ran on {job.get('recordCount')} records: the consenting students only")
    receipt: Any = b.ok(b.get(f"/v3/computejobs/{job['@id']}/receipt"))
    predicate = verify_receipt_here(receipt, school)
    check(predicate.get("algorithm", {}).get("signer") in (None, ai.did), "the receipt names B's algorithm signer")
    console.print(f"   receipt: epsilon {predicate.get('epsilonCharged')}, input "
                  f"{str(predicate.get('input', {}).get('digest', ''))[:23]}..., "
                  f"{predicate.get('input', {}).get('recordCount')} records")


def verify_receipt_here(receipt: dict[str, Any], school: ConnectorProcess) -> dict[str, Any]:
    """Verify A's receipt independently of B's connector: A's DID document, fetched over HTTP."""
    from compute_to_data.receipts import verify_receipt

    document = httpx.get(school.url + "/.well-known/did.json", timeout=10).json()

    def resolve(did: str) -> dict[str, Any]:
        if did != school.did:
            raise ValueError(f"{did} is not A's DID")
        return dict(document)

    verified = verify_receipt(receipt, resolve)
    check(verified.signer_did == school.did, f"receipt signature verified against A's DID {school.did}")
    return dict(verified.statement.get("predicate") or {})


def students_read_results(school: ConnectorProcess, a: ManagementClient, job: dict[str, Any],
                          tokens: dict[str, str], *, number: int) -> None:
    step(number, "Each student reads her own result in A", "/api/subject/v1 with her personal token")
    jobs_at_a: Any = a.ok(a.get("/v3/computejobs?role=provider"))
    provider_job = next(j for j in jobs_at_a if j.get("transferProcessId") and j["state"] == "RELEASED")
    for student in S.STUDENTS:
        subject, headers = student["subject"], {"Authorization": f"Bearer {tokens[student['subject']]}"}
        listed = httpx.get(school.url + "/api/subject/v1/jobs", headers=headers, timeout=10)
        ran = [j for j in _items(listed) if _job_id(j) == provider_job["@id"]]
        if subject not in S.CONSENTING:
            check(listed.status_code == 200 and not ran, f"{student['name']} ({subject}): no job ran on this record")
            continue
        check(bool(ran), f"{student['name']} ({subject}) sees the job that ran on her record")
        result = httpx.get(f"{school.url}/api/subject/v1/jobs/{provider_job['@id']}/result", headers=headers,
                           timeout=10)
        check(result.status_code == 200, f"{student['name']} reads her result")
        body = result.json()
        scores = body.get("result", body)
        expected = S.expected_scores(student)
        close = all(abs(float(scores[c]) - expected[c]) < 1e-4 for c in S.CAREERS)
        best = max(S.CAREERS, key=lambda c: float(scores[c]))
        check(close, f"{student['name']}'s scores match the model: best match [bold]{best}[/] "
                     f"({float(scores[best]):.2f})")


def _items(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json() if response.status_code == 200 else []
    if isinstance(body, dict):
        body = body.get("jobs") or body.get("items") or []
    return [j for j in body if isinstance(j, dict)]


def _job_id(job: dict[str, Any]) -> str | None:
    return job.get("@id") or job.get("id") or job.get("jobId")


__all__ = ["ManagementClient", "run_demo"]
