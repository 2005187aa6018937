"""`sovra demo`: two real connectors on loopback, walked through catalog, negotiation and a pull transfer.

The provider (a school's app holding a student's skills portfolio) offers one dataset; the consumer (an AI
provider) reads the catalog, negotiates an agreement, and pulls the data through the provider's data plane.
Everything goes over real HTTP between two processes, with signed tokens and SQLite, as a user would run it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel

from connector.localnet import ConnectorProcess, ManagementClient

console = Console()

PORTFOLIO = {
    "student": "S-1024",
    "skills": [{"name": "Python", "level": 4}, {"name": "Statistics", "level": 3}, {"name": "Design", "level": 2}],
    "certificates": ["Data Literacy 101"],
}


def step(number: int, title: str, detail: str = "") -> None:
    console.print(f"[bold cyan]{number}.[/] [bold]{title}[/]" + (f"  [dim]{detail}[/]" if detail else ""))


def run_demo(*, keep: bool = False, workdir: Path | None = None) -> int:
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="sovra-demo-"))
    provider = ConnectorProcess("provider", root / "provider")
    consumer = ConnectorProcess("consumer", root / "consumer")
    try:
        step(1, "Starting two connectors", f"data in {root}")
        provider.start()
        consumer.start()
        console.print(f"   provider  {provider.url}  [dim]{provider.did}[/]")
        console.print(f"   consumer  {consumer.url}  [dim]{consumer.did}[/]")
        walk(provider, consumer)
        console.print(Panel.fit("[bold green]Demo complete:[/] catalog, negotiation to FINALIZED and a pull "
                                "transfer with identical bytes, between two real connectors."))
        if keep:
            console.print("Both connectors keep running; press Ctrl-C to stop.")
            while True:
                time.sleep(3600)
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # show the reason and where the logs are, not a traceback
        console.print(f"[bold red]Demo failed:[/] {exc}")
        console.print(f"Logs: {provider.log_path} and {consumer.log_path}")
        return 1
    finally:
        provider.stop()
        consumer.stop()
        if workdir is None and not keep:
            shutil.rmtree(root, ignore_errors=True)


def walk(provider: ConnectorProcess, consumer: ConnectorProcess) -> None:
    p, c = provider.management(), consumer.management()
    source = provider.file_root / "portfolio-S-1024.json"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(json.dumps(PORTFOLIO, indent=2))

    step(2, "Provider publishes a dataset", "asset + policy + contract definition")
    p.ok(p.post("/v3/assets", {"@id": "skills-portfolio", "properties": {
        "name": "Skills portfolio of student S-1024", "contenttype": "application/json"},
        "dataAddress": {"type": "File", "path": str(source)}}))
    p.ok(p.post("/v3/policydefinitions", {"@id": "use-allowed", "policy": {
        "@type": "Set", "permission": [{"action": "use"}]}}))
    p.ok(p.post("/v3/contractdefinitions", {"@id": "portfolio-offer", "accessPolicyId": "use-allowed",
                                            "contractPolicyId": "use-allowed", "assetsSelector": []}))

    step(3, "Consumer reads the provider's catalog", "DSP CatalogRequestMessage")
    catalog: Any = c.ok(c.post("/v3/catalog/request", {"counterPartyAddress": provider.dsp_url,
                                                       "counterPartyId": provider.did}))
    datasets = catalog.get("dataset", [])
    dataset = next(d for d in datasets if d["@id"] == "skills-portfolio")
    offer = dataset["hasPolicy"][0]
    console.print(f"   {len(datasets)} dataset(s); offer [dim]{offer['@id']}[/]")

    step(4, "Consumer negotiates a contract", "request -> agreement -> verification -> finalized")
    started = time.monotonic()
    negotiation: Any = c.ok(c.post("/v3/contractnegotiations", {
        "counterPartyAddress": provider.dsp_url, "counterPartyId": provider.did,
        "protocol": "dataspace-protocol-http:2025-1",
        "policy": {**offer, "target": dataset["@id"], "assigner": provider.did}}))
    final = c.wait_state(f"/v3/contractnegotiations/{negotiation['@id']}", {"FINALIZED", "TERMINATED"})
    if final["state"] != "FINALIZED":
        raise RuntimeError(f"negotiation ended {final['state']}: {final.get('errorDetail')}")
    agreement_id = final["contractAgreementId"]
    console.print(f"   FINALIZED in {time.monotonic() - started:.2f} s; agreement [dim]{agreement_id}[/]")

    step(5, "Consumer starts a pull transfer", "HttpData-PULL")
    transfer: Any = c.ok(c.post("/v3/transferprocesses", {
        "counterPartyAddress": provider.dsp_url, "contractId": agreement_id, "transferType": "HttpData-PULL",
        "protocol": "dataspace-protocol-http:2025-1"}))
    c.wait_state(f"/v3/transferprocesses/{transfer['@id']}", {"STARTED"})
    edr: Any = c.ok(c.get(f"/v3/edrs/{transfer['@id']}/dataaddress"))
    console.print(f"   STARTED; endpoint {edr['endpoint']}")

    step(6, "Consumer fetches the data through the provider's data plane")
    response = httpx.get(edr["endpoint"], headers={"Authorization": edr["authorization"]}, timeout=30)
    response.raise_for_status()
    sent, got = source.read_bytes(), response.content
    if hashlib.sha256(sent).digest() != hashlib.sha256(got).digest():
        raise RuntimeError("the bytes received differ from the provider's file")
    console.print(f"   {len(got)} bytes, sha256 {hashlib.sha256(got).hexdigest()[:16]}... identical")
    c.ok(c.post(f"/v3/transferprocesses/{transfer['@id']}/complete"))
    c.wait_state(f"/v3/transferprocesses/{transfer['@id']}", {"COMPLETED"})
    step(7, "Transfer completed", "the provider's token no longer opens the data")
    after = httpx.get(edr["endpoint"], headers={"Authorization": edr["authorization"]}, timeout=30)
    console.print(f"   fetch after completion -> HTTP {after.status_code}")
    for client in (p, c):
        client.close()


__all__ = ["ManagementClient", "run_demo"]
