#!/usr/bin/env python3
"""The ClaudeCodeProxy AWS deployment (CDK v2). `cdk deploy --all` or `python3 app.py` to
synthesise into cdk.out/. Settings come from cdk.json's context (docs/deploy.md)."""

import json
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from ccp_cdk.compute import ComputeStack
from ccp_cdk.database import DatabaseStack
from ccp_cdk.monitoring import MonitoringStack
from ccp_cdk.network import NetworkStack
from ccp_cdk.secrets import SecretsStack
from ccp_cdk.settings import Settings


def with_defaults(app: cdk.App) -> cdk.App:
    """cdk.json's context, for `python3 app.py` and tests (the CDK CLI passes it itself);
    values given with -c win."""
    defaults = json.loads((Path(__file__).parent / "cdk.json").read_text())["context"]
    for key, value in defaults.items():
        if app.node.try_get_context(key) is None:
            app.node.set_context(key, value)
    return app


def build(app: cdk.App) -> dict:
    with_defaults(app)
    settings = Settings.from_context(app)
    env = cdk.Environment(
        account=app.node.try_get_context("account"), region=app.node.try_get_context("region")
    )
    network = NetworkStack(app, "CcpNetwork", settings=settings, env=env)
    secrets = SecretsStack(app, "CcpSecrets", env=env)
    database = DatabaseStack(app, "CcpDatabase", network=network, settings=settings, env=env)
    compute = ComputeStack(
        app, "CcpCompute", network=network, secrets=secrets, database=database, settings=settings, env=env
    )
    monitoring = MonitoringStack(app, "CcpMonitoring", compute=compute, database=database, settings=settings, env=env)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return {"network": network, "secrets": secrets, "database": database, "compute": compute, "monitoring": monitoring}


if __name__ == "__main__":
    app = cdk.App(outdir=str(Path(__file__).parent / "cdk.out"))
    build(app)
    app.synth()
