"""Run the Eclipse EDC peer that tests/interop/edc/pom.xml assembles, as a real JVM on loopback.

`scripts/interop-edc` (or `mvn -q -Dmaven.repo.local=.m2 package` in tests/interop/edc) writes the runtime
classpath to target/classpath.txt; `EdcRuntime` writes a config file of ours, starts
`org.eclipse.edc.boot.system.runtime.BaseRuntime` with it and waits until the embedded data plane has
registered with the control plane. Identity is EDC's `iam-mock`; the EDR tokens of its data plane are signed
with a P-256 key generated per run and passed through the config (EDC's private-key resolver falls back to
config when the vault has no entry).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connector.localnet import ManagementClient, free_port

EDC_DIR = Path(__file__).resolve().parent / "edc"
CLASSPATH_FILE = EDC_DIR / "target" / "classpath.txt"
CLASSES_DIR = EDC_DIR / "target" / "classes"
MAIN_CLASS = "org.eclipse.edc.boot.system.runtime.BaseRuntime"
EDC_VOCAB = "https://w3id.org/edc/v0.0.1/ns/"
EDC_CONTEXT = {"@vocab": EDC_VOCAB}
DSP_2025 = "dataspace-protocol-http:2025-1"


def edc_version() -> str:
    """The EDC version the pom pins (read from the pom, so the docs and the tests never disagree)."""
    text = (EDC_DIR / "pom.xml").read_text()
    return text.split("<edc.version>", 1)[1].split("</edc.version>", 1)[0]


def classpath_missing_reason() -> str | None:
    if not CLASSPATH_FILE.is_file() or not (CLASSES_DIR / "META-INF").is_dir():
        return (f"the EDC runtime is not built ({CLASSPATH_FILE.relative_to(EDC_DIR.parents[2])} is missing); "
                "run scripts/interop-edc, or `mvn -q -Dmaven.repo.local=.m2 package` in tests/interop/edc")
    return None


def _pem_property(pem: bytes) -> str:
    """A PEM block as one Java properties value (newlines escaped)."""
    return pem.decode().strip().replace("\n", "\\n")


@dataclass
class EdcRuntime:
    data_dir: Path
    participant_id: str = "edc-peer"
    api_key: str = "edc-interop-key"
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in (
        "default", "management", "protocol", "control", "version", "public")})
    process: subprocess.Popen[bytes] | None = None

    @property
    def protocol_url(self) -> str:
        """The DSP root (where /.well-known/dspace-version is served)."""
        return f"http://localhost:{self.ports['protocol']}/protocol"

    @property
    def dsp_url(self) -> str:
        """The DSP 2025-1 base that peers address."""
        return self.protocol_url + "/2025-1"

    @property
    def public_url(self) -> str:
        return f"http://localhost:{self.ports['public']}/public"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "edc.log"

    def config(self) -> dict[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        paths = {"default": "/api", "management": "/api/management", "protocol": "/protocol",
                 "control": "/control", "version": "/version", "public": "/public"}
        config = {
            "edc.participant.id": self.participant_id,
            "edc.runtime.id": "sovra-interop-edc",
            "edc.dsp.callback.address": self.protocol_url,
            "web.http.management.auth.type": "tokenbased",
            "web.http.management.auth.key": self.api_key,
            "sovra.interop.public.url": self.public_url,
            "edc.transfer.proxy.token.signer.privatekey.alias": "sovra.interop.signer",
            "edc.transfer.proxy.token.verifier.publickey.alias": "sovra.interop.verifier",
            "sovra.interop.signer": _pem_property(private_pem),
            "sovra.interop.verifier": _pem_property(public_pem),
            "edc.iam.publickeys.verifier.id": "sovra.interop.verifier",
            "edc.iam.publickeys.verifier.value": _pem_property(public_pem),
            # Poll the state machines often: the defaults are tuned for throughput, not for short tests.
            "edc.negotiation.consumer.state-machine.iteration-wait-millis": "100",
            "edc.negotiation.provider.state-machine.iteration-wait-millis": "100",
            "edc.transfer.state-machine.iteration-wait-millis": "100",
            "edc.dataplane.state-machine.iteration-wait-millis": "100",
        }
        for name, port in self.ports.items():
            prefix = "web.http" if name == "default" else f"web.http.{name}"
            config[f"{prefix}.port"] = str(port)
            config[f"{prefix}.path"] = paths[name]
        return config

    def command(self, config_file: Path) -> list[str]:
        classpath = f"{CLASSES_DIR}{os.pathsep}{CLASSPATH_FILE.read_text().strip()}"
        return ["java", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", f"-Dedc.fs.config={config_file}",
                "-cp", classpath, MAIN_CLASS]

    def start(self, *, timeout: float = 90.0) -> EdcRuntime:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config_file = self.data_dir / "edc.properties"
        config_file.write_text("".join(f"{key}={value}\n" for key, value in self.config().items()))
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command(config_file), stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.data_dir, start_new_session=True)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Ready = the management API answers and the data plane offers HttpData-PULL."""
        deadline = time.monotonic() + timeout
        management = self.management()
        last = "no answer"
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"EDC exited with {self.process.returncode}; see {self.log_path}:\n"
                                       + self.log_path.read_text()[-4000:])
                try:
                    planes = management.get("/v3/dataplanes")
                    if planes.status_code == 200 and any(
                            "HttpData-PULL" in plane.get("allowedTransferTypes", [])
                            and plane.get("state") == "AVAILABLE" for plane in planes.json()):
                        return
                    last = f"{planes.status_code}: {planes.text[:200]}"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                time.sleep(0.25)
        finally:
            management.close()
        raise TimeoutError(f"EDC was not ready within {timeout} s ({last}); see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def management(self) -> ManagementClient:
        return ManagementClient(f"http://localhost:{self.ports['management']}", self.api_key)


def edc_body(body: dict[str, Any]) -> dict[str, Any]:
    """An EDC management request body: unprefixed keys land in the EDC namespace."""
    return {"@context": EDC_CONTEXT, **body}
