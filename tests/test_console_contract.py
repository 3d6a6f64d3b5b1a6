"""The console API keeps the promises of its own OpenAPI spec (schemathesis 4, in-process over ASGI).

Every operation is called with generated (valid and invalid) input under an engineer's token, beside a
live processor with open alerts; each response must have a documented status code, content type and
shape, and no input may make the server fail (5xx). The event stream never ends by design, so it is
left to tests/test_console_api.py. Examples are kept few so this runs in well under a minute.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.specs.openapi.checks import positive_data_acceptance

from rules.loader import load_rules
from sentinel.console.app import create_app
from sentinel.console.config import ConsoleConfig
from sentinel.console.ops_db import OpsDB
from sentinel.console.rules_manager import RulesManager
from sentinel.console.testing import ProcessorThread
from tests.helpers import MIN, catalog, series_batch

CAT = catalog(
    {"sensor_id": "P1", "network": "water", "zone": "Z1", "quantity": "pressure", "unit": "kPa", "interval_s": 60,
     "lat": 30.27, "lon": 120.15},
    {"sensor_id": "G1", "network": "gas", "zone": "G", "quantity": "gas_concentration", "unit": "%LEL",
     "interval_s": 60},
)
RULES = """\
rules:
  - id: low-pressure
    kind: threshold
    select: {network: water, quantity: pressure}
    low: {yellow: 250, red: 200}
  - id: gas-lel
    kind: threshold
    select: {network: gas}
    high: {yellow: 10, red: 50}
"""
EXAMPLES = 20


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ProcessorThread]]:
    tmp = tmp_path_factory.mktemp("contract")
    (tmp / "rules.yaml").write_text(RULES, encoding="utf-8")
    with ProcessorThread(CAT, load_rules([tmp / "rules.yaml"]), tmp / "results.sqlite") as proc:
        n = 30
        proc.feed(series_batch(CAT, {"P1": np.r_[np.full(20, 300.0), np.full(n - 20, 150.0)],
                                     "G1": np.r_[np.full(20, 1.0), np.full(n - 20, 20.0)]},
                               t0=time.time_ns() - n * MIN))
        yield tmp, proc


@pytest.fixture(scope="module")
def live(processor: tuple[Path, ProcessorThread]) -> tuple[FastAPI, dict[str, str]]:
    """The app under test, with actions and rules, and an engineer's token (who may call everything)."""
    tmp, proc = processor
    ops = OpsDB(tmp / "ops.sqlite")
    ops.add_user("erin", "engineer", "engineer-secret")
    token, _ = ops.issue_token("erin", "engineer", "api", "contract", 3600)
    app = create_app(ConsoleConfig(ops_db=ops.path), store_path=tmp / "results.sqlite", catalog=CAT,
                     actions=proc.actions(), rules=RulesManager(tmp / "rules.yaml", ops, CAT, tmp / "results.sqlite"))
    return app, {"Authorization": f"Bearer {token}"}


def _spec_app() -> FastAPI:
    """The spec is the code's, not the data's: load it once at collection from a throwaway instance
    (schemathesis' fixture-based loader does not work with pytest 9)."""
    with tempfile.TemporaryDirectory() as d:
        return create_app(ConsoleConfig(ops_db=Path(d) / "ops.sqlite"), store_path=Path(d) / "none.sqlite", catalog=CAT)


schema = schemathesis.openapi.from_asgi("/api/openapi.json", _spec_app()).exclude(path="/api/stream")
# the token is ours to send (below); generated or removed Authorization headers would only test the override
schema.config.generation.update(max_examples=EXAMPLES, with_security_parameters=False)


# Input a JSON schema cannot judge: a text that must parse as a rules file, names that must be in the
# catalog, times that must parse. These answer a documented 422 to schema-valid input, by design.
SEMANTIC = {("POST", "/api/rules/validate"), ("POST", "/api/rules/versions"), ("POST", "/api/silences"),
            ("GET", "/api/sensors/{sensor_id}/readings")}


@schema.parametrize()
def test_api_conforms_to_its_openapi_spec(case: schemathesis.Case, live: tuple[FastAPI, dict[str, str]]) -> None:
    app, auth = live
    semantic = (case.method.upper(), case.path) in SEMANTIC
    case.call_and_validate(app=app, headers=auth, excluded_checks=[positive_data_acceptance] if semantic else None)


def test_spec_documents_auth_and_every_operation() -> None:
    raw = _spec_app().openapi()
    assert raw["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    ops = {(m.upper(), p) for p, item in raw["paths"].items() for m in item}
    for needed in [("GET", "/api/alerts"), ("GET", "/api/alerts/{alert_id}"),
                   ("POST", "/api/alerts/{alert_id}/acknowledge"), ("POST", "/api/alerts/{alert_id}/resolve"),
                   ("GET", "/api/silences"), ("POST", "/api/silences"), ("DELETE", "/api/silences/{silence_id}"),
                   ("GET", "/api/sensors"), ("GET", "/api/zones"), ("GET", "/api/sensors/{sensor_id}/readings"),
                   ("POST", "/api/rules/versions"), ("POST", "/api/rules/validate"),
                   ("POST", "/api/rules/versions/{version}/dry-run"),
                   ("POST", "/api/rules/versions/{version}/activate"), ("POST", "/api/rules/rollback"),
                   ("POST", "/api/auth/login"), ("GET", "/api/audit"), ("GET", "/api/stream")]:
        assert needed in ops, needed
