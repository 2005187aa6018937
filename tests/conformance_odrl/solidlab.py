"""Load the SolidLab ODRL test suite: policy, request and state of the world per case, read with rdflib."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import DCTERMS, RDF

from policies import Policy, Request, State
from policies.parse import build

# Third-party corpora, copied as data with their licences (see tests/fixtures/odrl/SOURCES.md).
CASES = Path(__file__).resolve().parents[1] / "fixtures" / "odrl"
SUITE = CASES / "solidlab-odrl-test-suite" / "data"
TSV = CASES / "derived" / "solidlab-expected-decisions.tsv"
ODRL = Namespace("http://www.w3.org/ns/odrl/2/")
REPORT = Namespace("https://w3id.org/force/compliance-report#")
DEONTIC = {"NonSet": "not-set", "Fulfilled": "fulfilled", "Violated": "violated"}


@dataclass(frozen=True)
class Case:
    file: str
    expected: str
    policy: Policy
    request: Request
    state: State
    expected_constraints: dict[str, str]


def _graph(path: Path) -> Graph:
    return Graph().parse(path, format="turtle")


def _expanded(graph: Graph) -> list[dict]:
    return json.loads(graph.serialize(format="json-ld"))


def load_request(path: Path) -> Request:
    graph = _graph(path)
    request_policy = build(_expanded(graph))
    rule = request_policy.permissions[0]
    return Request(action=rule.action.iri, target=rule.target.uid if rule.target else None,
                   assignee=rule.assignee.uid if rule.assignee else None)


def load_state(path: Path) -> State:
    graph = _graph(path)
    now = next(graph.objects(URIRef("http://example.com/request/currentTime"), DCTERMS.issued)).toPython()
    part_of: dict[str, list[str]] = {}
    for member, collection in graph.subject_objects(ODRL.partOf):
        part_of.setdefault(str(member), []).append(str(collection))
    duty_states = {str(graph.value(report, REPORT.rule)): DEONTIC[str(graph.value(report, REPORT.deonticState))
                                                                  .rsplit("#", 1)[1]]
                   for report in graph.subjects(RDF.type, REPORT.DutyReport)}
    assert isinstance(now, datetime)
    return State(now=now, part_of=part_of, duty_states=duty_states)


def expected_constraints(path: Path) -> dict[str, str]:
    graph = _graph(path)
    out = {}
    for report in graph.subjects(RDF.type, REPORT.ConstraintReport):
        constraint = graph.value(report, REPORT.constraint)
        state = graph.value(report, REPORT.satisfactionState)
        if constraint is not None and state is not None:
            out[str(constraint)] = "satisfied" if str(state).endswith("#Satisfied") else "unsatisfied"
    return out


def load_cases() -> list[Case]:
    cases = []
    with TSV.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            policy = build(_expanded(_graph(SUITE / "policies" / row["policy_file"])))
            cases.append(Case(
                file=row["test_case_file"], expected=row["derived_decision"], policy=policy,
                request=load_request(SUITE / "requests" / row["request_file"]),
                state=load_state(SUITE / "sotw" / row["sotw_file"]),
                expected_constraints=expected_constraints(SUITE / "test_cases" / row["test_case_file"]),
            ))
    return cases
