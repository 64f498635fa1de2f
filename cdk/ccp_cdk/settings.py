"""Deployment settings read from CDK context (cdk.json, or `-c name=value`), checked once."""

from dataclasses import dataclass

from constructs import Construct

# The gateway's drain on SIGTERM; ECS's stopTimeout and the target group's deregistration
# delay are set longer, so a deployment never cuts a stream that the gateway would finish.
GATEWAY_DRAIN_SECS = 90
STOP_TIMEOUT_SECS = 120  # the Fargate maximum
DEREGISTRATION_DELAY_SECS = 110
# Longer than the longest gap the gateway allows between an upstream's bytes (Bedrock 300 s,
# Plan 600 s), so the load balancer never closes a quiet but live stream first.
ALB_IDLE_TIMEOUT_SECS = 660
METRICS_NAMESPACE = "ClaudeCodeProxy"
KMS_CONTEXT_PURPOSE = "bedrock-api-key"  # core/src/crypto.rs: WrapContext::PURPOSE
PORTS = {"gateway": 8080, "admin": 8081, "console": 3000}


@dataclass(frozen=True)
class Settings:
    admin_cidrs: list
    db_min_acu: float
    db_max_acu: float
    db_iam_auth: bool
    gateway_min_tasks: int
    gateway_max_tasks: int
    alarm_email: str

    @staticmethod
    def from_context(scope: Construct) -> "Settings":
        ctx = scope.node.try_get_context
        s = Settings(
            admin_cidrs=list(ctx("adminCidrs") or []),
            db_min_acu=float(ctx("dbMinAcu")),
            db_max_acu=float(ctx("dbMaxAcu")),
            db_iam_auth=str(ctx("dbIamAuth")).lower() == "true",
            gateway_min_tasks=int(ctx("gatewayMinTasks")),
            gateway_max_tasks=int(ctx("gatewayMaxTasks")),
            alarm_email=str(ctx("alarmEmail") or ""),
        )
        if not s.admin_cidrs:
            raise ValueError("adminCidrs: name at least one CIDR allowed to reach the admin console")
        if not 0.5 <= s.db_min_acu <= s.db_max_acu <= 256:
            raise ValueError("dbMinAcu and dbMaxAcu: 0.5 <= min <= max <= 256")
        if not 1 <= s.gateway_min_tasks <= s.gateway_max_tasks:
            raise ValueError("gatewayMinTasks and gatewayMaxTasks: 1 <= min <= max")
        return s
