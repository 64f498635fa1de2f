"""The AWS deployment, synthesised without an account: the security and operations choices
held by assertions on the templates, then cfn-lint and cdk-nag over the whole app."""

import json
import re
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import app as ccp_app  # noqa: E402
from ccp_cdk.settings import (  # noqa: E402
    ALB_IDLE_TIMEOUT_SECS,
    DEREGISTRATION_DELAY_SECS,
    GATEWAY_DRAIN_SECS,
    KMS_CONTEXT_PURPOSE,
    METRICS_NAMESPACE,
    STOP_TIMEOUT_SECS,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(out), context={"adminCidrs": ["10.20.0.0/16", "192.168.7.0/24"]})
    stacks = ccp_app.build(app)
    app.synth()
    return {"out": out, "stacks": stacks, "t": {k: Template.from_stack(s) for k, s in stacks.items()}}


def resources(template, kind):
    return template.find_resources(kind)


def one(template, kind):
    found = list(resources(template, kind).values())
    assert len(found) == 1, f"{kind}: {len(found)}"
    return found[0]["Properties"]


def test_bedrock_key_wrap_key_rotates_and_each_role_gets_only_its_actions_with_the_context(synth):
    t = synth["t"]["secrets"]
    key = one(t, "AWS::KMS::Key")
    assert key["EnableKeyRotation"] is True
    statements = {s.get("Sid"): s for s in key["KeyPolicy"]["Statement"]}
    condition = {
        "StringEquals": {"kms:EncryptionContext:purpose": KMS_CONTEXT_PURPOSE},
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["purpose", "access_key_id"]},
    }
    gateway = statements["GatewayUnwrapsBedrockKeys"]
    admin = statements["AdminWrapsBedrockKeys"]
    assert gateway["Action"] == "kms:Decrypt"
    assert sorted(admin["Action"]) == ["kms:Decrypt", "kms:Encrypt"]
    for s in (gateway, admin):
        assert s["Condition"] == condition
    assert "GatewayTaskRole" in json.dumps(gateway["Principal"])
    assert "AdminTaskRole" in json.dumps(admin["Principal"])


def test_task_roles_are_least_privilege(synth):
    t = synth["t"]["secrets"]
    policies = resources(t, "AWS::IAM::Policy")
    gateway = next(p for name, p in policies.items() if name.startswith("GatewayTaskRole"))
    statements = gateway["Properties"]["PolicyDocument"]["Statement"]
    put = next(s for s in statements if s["Action"] == "cloudwatch:PutMetricData")
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}
    kms = next(s for s in statements if s["Action"] == "kms:Decrypt")
    assert kms["Resource"] != "*" and "Condition" in kms
    for p in policies.values():
        for s in p["Properties"]["PolicyDocument"]["Statement"]:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            assert not any(a.endswith(":*") or a == "*" for a in actions), s


def test_public_alb_hardening(synth):
    t = synth["t"]["compute"]
    albs = resources(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    public = next(a["Properties"] for a in albs.values() if a["Properties"].get("Scheme") == "internet-facing")
    attrs = {a["Key"]: a["Value"] for a in public["LoadBalancerAttributes"]}
    assert attrs["routing.http.desync_mitigation_mode"] == "strictest"
    assert attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert int(attrs["idle_timeout.timeout_seconds"]) == ALB_IDLE_TIMEOUT_SECS >= 600
    assert attrs.get("access_logs.s3.enabled", "false") == "false", "the access key is in the path"
    internal = [a for a in albs.values() if a["Properties"].get("Scheme") == "internal"]
    assert len(internal) == 1, "the console and admin API sit behind an internal ALB"
    listeners = [l["Properties"] for l in resources(t, "AWS::ElasticLoadBalancingV2::Listener").values()]
    https = [l for l in listeners if l["Protocol"] == "HTTPS"]
    assert len(https) == 2 and all(l["Certificates"][0]["CertificateArn"] == {"Ref": "CertificateArn"} for l in https)
    redirect = next(l for l in listeners if l["Protocol"] == "HTTP")
    assert redirect["DefaultActions"][0]["RedirectConfig"]["Port"] == "443"


def test_health_checks_and_drain_timing(synth):
    t = synth["t"]["compute"]
    groups = [g["Properties"] for g in resources(t, "AWS::ElasticLoadBalancingV2::TargetGroup").values()]
    gateway = next(g for g in groups if g["Port"] == 8080)
    assert gateway["HealthCheckPath"] == "/readyz"
    delay = {a["Key"]: a["Value"] for a in gateway["TargetGroupAttributes"]}["deregistration_delay.timeout_seconds"]
    assert int(delay) == DEREGISTRATION_DELAY_SECS > GATEWAY_DRAIN_SECS
    tasks = [d["Properties"] for d in resources(t, "AWS::ECS::TaskDefinition").values()]
    gw = next(d for d in tasks if d["ContainerDefinitions"][0]["Name"] == "gateway")
    container = gw["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert int(env["CCP_SHUTDOWN_GRACE_SECS"]) == GATEWAY_DRAIN_SECS < container["StopTimeout"] == STOP_TIMEOUT_SECS
    assert gw["RuntimePlatform"]["CpuArchitecture"] == "ARM64"


def test_security_groups_allow_only_the_paths_the_design_names(synth):
    t = synth["t"]["network"]
    groups = resources(t, "AWS::EC2::SecurityGroup")

    def ingress(logical_prefix):
        name, group = next((n, g) for n, g in groups.items() if n.startswith(logical_prefix))
        rules = list(group["Properties"].get("SecurityGroupIngress", []))
        for r in resources(t, "AWS::EC2::SecurityGroupIngress").values():
            if r["Properties"]["GroupId"] == {"Fn::GetAtt": [name, "GroupId"]}:
                rules.append(r["Properties"])
        return rules

    gateway = ingress("GatewaySg")
    assert [(r["FromPort"], "PublicAlbSg" in json.dumps(r["SourceSecurityGroupId"])) for r in gateway] == [(8080, True)]
    admin_alb = ingress("AdminAlbSg")
    assert sorted((r["CidrIp"], r["FromPort"]) for r in admin_alb) == [("10.20.0.0/16", 443), ("192.168.7.0/24", 443)]
    assert all("CidrIp" not in r for r in ingress("AdminSg")), "the admin API only from the ALB and the console"
    db = synth["t"]["database"]
    db_rules = [r["Properties"] for r in resources(db, "AWS::EC2::SecurityGroupIngress").values()]
    db_rules += [r for g in resources(db, "AWS::EC2::SecurityGroup").values() for r in g["Properties"].get("SecurityGroupIngress", [])]
    assert db_rules and all("CidrIp" not in r for r in db_rules), "no address range reaches the database"
    sources = sorted(json.dumps(r["SourceSecurityGroupId"]) for r in db_rules)
    assert len(sources) == 3, sources
    assert any("GatewaySg" in s for s in sources) and any("AdminSg" in s for s in sources)
    assert any("RotationSingleUser" in s for s in sources), "and the password-rotation function"


def test_aurora_is_encrypted_backed_up_protected_and_sized_by_context(synth):
    t = synth["t"]["database"]
    cluster = one(t, "AWS::RDS::DBCluster")
    assert cluster["StorageEncrypted"] is True
    assert cluster["DeletionProtection"] is True
    assert cluster["BackupRetentionPeriod"] >= 7
    assert cluster["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 4}
    assert cluster["Engine"] == "aurora-postgresql"
    one(t, "AWS::SecretsManager::RotationSchedule")


def test_alarms_reach_the_topic(synth):
    t = synth["t"]["monitoring"]
    alarms = resources(t, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 9
    for a in alarms.values():
        assert a["Properties"]["AlarmActions"], a
    names = " ".join(alarms)
    for expected in ["FiveXxRate", "FailoverSpike", "CircuitOpens", "PlanLatencyP99", "UnhealthyTargets",
                     "DatabaseCpu", "DatabaseConnections", "MetricsPublishFailures"]:
        assert expected in names, expected
    one(t, "AWS::CloudWatch::Dashboard")


def test_every_setting_a_task_receives_is_documented(synth):
    documented = set(re.findall(r"`(CCP_[A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text()))
    used = set()
    for d in resources(synth["t"]["compute"], "AWS::ECS::TaskDefinition").values():
        for c in d["Properties"]["ContainerDefinitions"]:
            used |= {e["Name"] for e in c.get("Environment", [])} | {s["Name"] for s in c.get("Secrets", [])}
    ccp = {n for n in used if n.startswith("CCP_")}
    assert ccp, used
    assert ccp <= documented, sorted(ccp - documented)
    # No secret travels as a plain variable.
    for d in resources(synth["t"]["compute"], "AWS::ECS::TaskDefinition").values():
        for c in d["Properties"]["ContainerDefinitions"]:
            plain = {e["Name"] for e in c.get("Environment", [])}
            assert not plain & {"CCP_PEPPER", "CCP_SESSION_SECRET", "CCP_DATABASE_PASSWORD", "CCP_DATABASE_URL"}


def test_cdk_nag_finds_nothing_unexplained(synth):
    for name, stack in synth["stacks"].items():
        errors = Annotations.from_stack(stack).find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
        assert errors == [], f"{name}: {[e.entry.data for e in errors]}"
        warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))
        assert warnings == [], f"{name}: {[e.entry.data for e in warnings]}"


def test_cfn_lint_finds_no_errors(synth):
    templates = sorted(str(p) for p in Path(synth["out"]).glob("*.template.json"))
    assert len(templates) == 5
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    # Two warnings about what CDK itself generates are left out: W3005 (a DependsOn that a Ref
    # already implies, which CDK adds for ordering) and W6001 (an output re-exporting a
    # cross-stack import: the migration command). Anything else, warnings included, fails.
    out = subprocess.run(
        [str(cfn_lint), "--ignore-checks", "W3005", "W6001", "--", *templates], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
