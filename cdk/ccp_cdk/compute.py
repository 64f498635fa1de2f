"""ComputeStack: the three services on ECS Fargate (Graviton), the public ALB in front of
the gateway, the internal ALB in front of the console and admin API, autoscaling, and the
one-off migration task."""

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from cdk_nag import NagSuppressions
from constructs import Construct

from .database import DATABASE_NAME, DatabaseStack
from .network import NetworkStack
from .secrets import SecretsStack
from .settings import (
    ALB_IDLE_TIMEOUT_SECS,
    DEREGISTRATION_DELAY_SECS,
    GATEWAY_DRAIN_SECS,
    METRICS_NAMESPACE,
    PORTS,
    STOP_TIMEOUT_SECS,
    Settings,
)

REPO = Path(__file__).resolve().parents[2]
ARM64 = ecs.RuntimePlatform(
    cpu_architecture=ecs.CpuArchitecture.ARM64, operating_system_family=ecs.OperatingSystemFamily.LINUX
)


class ComputeStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        network: NetworkStack,
        secrets: SecretsStack,
        database: DatabaseStack,
        settings: Settings,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        vpc = network.vpc
        certificate_arn = cdk.CfnParameter(
            self,
            "CertificateArn",
            type="String",
            description="ACM certificate for the HTTPS listeners (the gateway's and the console's names)",
        )
        certificate = elbv2.ListenerCertificate.from_arn(certificate_arn.value_as_string)
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        namespace = self.cluster.add_default_cloud_map_namespace(name="ccp.internal")

        db = database.secret
        # Aurora's generated secret, field by field (docs/configuration.md: CCP_DATABASE_*).
        database_secrets = {
            "CCP_DATABASE_HOST": ecs.Secret.from_secrets_manager(db, "host"),
            "CCP_DATABASE_PORT": ecs.Secret.from_secrets_manager(db, "port"),
            "CCP_DATABASE_USERNAME": ecs.Secret.from_secrets_manager(db, "username"),
            "CCP_DATABASE_PASSWORD": ecs.Secret.from_secrets_manager(db, "password"),
        }
        common_env = {
            "CCP_DATABASE_NAME": DATABASE_NAME,
            "CCP_KEY_WRAPPER": "kms",
            "CCP_KMS_KEY_ID": secrets.bedrock_key_wrap.key_arn,
            "CCP_LOG_FORMAT": "json",
        }

        def task(name: str, role: iam.IRole, cpu: int, memory: int) -> ecs.FargateTaskDefinition:
            return ecs.FargateTaskDefinition(
                self, f"{name}Task", cpu=cpu, memory_limit_mib=memory, runtime_platform=ARM64, task_role=role
            )

        self.log_groups: dict = {}

        def log_driver(name: str) -> ecs.LogDriver:
            group = logs.LogGroup(self, f"{name}Logs", retention=logs.RetentionDays.THREE_MONTHS)
            self.log_groups[name] = group
            return ecs.LogDrivers.aws_logs(stream_prefix=name.lower(), log_group=group)

        def image(dockerfile: str, directory: Path = REPO) -> ecs.ContainerImage:
            return ecs.ContainerImage.from_asset(
                str(directory), file=dockerfile, platform=cdk.aws_ecr_assets.Platform.LINUX_ARM64
            )

        def service(name: str, task_definition, group: ec2.ISecurityGroup, **extra) -> ecs.FargateService:
            """A service in the app subnets that rolls back a deployment that does not settle."""
            options = {"desired_count": 1, **extra}
            return ecs.FargateService(
                self,
                name,
                cluster=self.cluster,
                task_definition=task_definition,
                security_groups=[group],
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
                **options,
            )

        # --- gateway -------------------------------------------------------------------
        gateway_task = task("Gateway", secrets.gateway_role, 1024, 2048)
        gateway_task.add_container(
            "gateway",
            image=image("Dockerfile.gateway"),
            logging=log_driver("Gateway"),
            port_mappings=[ecs.PortMapping(container_port=PORTS["gateway"])],
            environment={
                **common_env,
                "CCP_GATEWAY_ADDR": f"0.0.0.0:{PORTS['gateway']}",
                "CCP_METRICS_SINK": "cloudwatch",
                "CCP_CLOUDWATCH_NAMESPACE": METRICS_NAMESPACE,
                "CCP_METRICS_ADDR": "off",
                "CCP_SHUTDOWN_GRACE_SECS": str(GATEWAY_DRAIN_SECS),
            },
            secrets={**database_secrets, "CCP_PEPPER": ecs.Secret.from_secrets_manager(secrets.pepper)},
            stop_timeout=cdk.Duration.seconds(STOP_TIMEOUT_SECS),
        )
        secrets.gateway_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource type; the namespace condition bounds it
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            )
        )
        NagSuppressions.add_resource_suppressions(
            secrets.gateway_role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "cloudwatch:PutMetricData has no resource-level permissions; the statement is bounded "
                    "by the cloudwatch:namespace condition to the gateway's own namespace.",
                    "applies_to": ["Resource::*"],
                }
            ],
            apply_to_children=True,
        )
        self.gateway = service(
            "GatewayService",
            gateway_task,
            network.gateway_sg,
            desired_count=settings.gateway_min_tasks,
            min_healthy_percent=100,
        )

        # The public ALB. Access logs stay off: the access key is in every request's path
        # (/ak/<key>/…), and ALB access logs would store it in S3 in clear.
        self.public_alb = elbv2.ApplicationLoadBalancer(
            self,
            "PublicAlb",
            vpc=vpc,
            internet_facing=True,
            security_group=network.public_alb_sg,
            idle_timeout=cdk.Duration.seconds(ALB_IDLE_TIMEOUT_SECS),
            desync_mitigation_mode=elbv2.DesyncMitigationMode.STRICTEST,
            drop_invalid_header_fields=True,
        )
        https = self.public_alb.add_listener(
            "Https", port=443, certificates=[certificate], ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS, open=False
        )
        self.public_alb.add_redirect(source_port=80, target_port=443)
        self.gateway_targets = https.add_targets(
            "Gateway",
            port=PORTS["gateway"],
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.gateway],
            health_check=elbv2.HealthCheck(path="/readyz", healthy_http_codes="200", interval=cdk.Duration.seconds(10)),
            deregistration_delay=cdk.Duration.seconds(DEREGISTRATION_DELAY_SECS),
        )
        scaling = self.gateway.auto_scale_task_count(
            min_capacity=settings.gateway_min_tasks, max_capacity=settings.gateway_max_tasks
        )
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        scaling.scale_on_request_count("Requests", requests_per_target=600, target_group=self.gateway_targets)

        # --- admin API and console ------------------------------------------------------
        admin_image = image("Dockerfile.admin")
        admin_task = task("Admin", secrets.admin_role, 512, 1024)
        admin_task.add_container(
            "admin",
            image=admin_image,
            logging=log_driver("Admin"),
            port_mappings=[ecs.PortMapping(container_port=PORTS["admin"])],
            environment={
                **common_env,
                "CCP_ADMIN_ADDR": f"0.0.0.0:{PORTS['admin']}",
                "CCP_ADMIN_TRUST_FORWARDED_FOR": "on",
            },
            secrets={
                **database_secrets,
                "CCP_PEPPER": ecs.Secret.from_secrets_manager(secrets.pepper),
                "CCP_SESSION_SECRET": ecs.Secret.from_secrets_manager(secrets.session_secret),
            },
        )
        self.admin = service(
            "AdminService",
            admin_task,
            network.admin_sg,
            cloud_map_options=ecs.CloudMapOptions(name="admin", cloud_map_namespace=namespace),
        )
        console_task = task("Console", iam.Role(self, "ConsoleTaskRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com")), 512, 1024)
        console_task.add_container(
            "console",
            image=image("Dockerfile", REPO / "console"),
            logging=log_driver("Console"),
            port_mappings=[ecs.PortMapping(container_port=PORTS["console"])],
            environment={
                "CCP_CONSOLE_ADMIN_API_URL": f"http://admin.ccp.internal:{PORTS['admin']}",
                "CCP_CONSOLE_GATEWAY_URL": f"https://{self.public_alb.load_balancer_dns_name}",
                "PORT": str(PORTS["console"]),
            },
        )
        self.console = service("ConsoleService", console_task, network.console_sg)
        # The console and the admin API are reachable only inside the VPC, and there only from
        # the admin CIDRs (security group of the internal ALB).
        self.admin_alb = elbv2.ApplicationLoadBalancer(
            self,
            "AdminAlb",
            vpc=vpc,
            internet_facing=False,
            security_group=network.admin_alb_sg,
            desync_mitigation_mode=elbv2.DesyncMitigationMode.STRICTEST,
            drop_invalid_header_fields=True,
        )
        admin_https = self.admin_alb.add_listener(
            "Https", port=443, certificates=[certificate], ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS, open=False
        )
        self.console_targets = admin_https.add_targets(
            "Console",
            port=PORTS["console"],
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.console],
            health_check=elbv2.HealthCheck(path="/login", healthy_http_codes="200"),
        )
        self.admin_targets = admin_https.add_targets(
            "AdminApi",
            priority=10,
            conditions=[elbv2.ListenerCondition.path_patterns(["/admin/*"])],
            port=PORTS["admin"],
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.admin],
            health_check=elbv2.HealthCheck(path="/admin/openapi.json", healthy_http_codes="200"),
        )

        # --- migrations: one task per deploy, run before the services roll ---------------
        migrate_task = task("Migrate", secrets.admin_role, 256, 512)
        migrate_task.add_container(
            "migrate",
            image=admin_image,
            logging=log_driver("Migrate"),
            entry_point=["/usr/local/bin/ccp-admin"],
            command=["migrate"],
            environment=common_env,
            secrets={**database_secrets, "CCP_PEPPER": ecs.Secret.from_secrets_manager(secrets.pepper)},
        )
        subnets = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
        cdk.CfnOutput(
            self,
            "MigrateCommand",
            description="Run once per deploy, before the services update (docs/deploy.md)",
            value=cdk.Fn.join(
                "",
                [
                    "aws ecs run-task --cluster ",
                    self.cluster.cluster_name,
                    " --launch-type FARGATE --task-definition ",
                    migrate_task.task_definition_arn,
                    " --network-configuration 'awsvpcConfiguration={subnets=[",
                    cdk.Fn.join(",", subnets),
                    "],securityGroups=[",
                    network.admin_sg.security_group_id,
                    "]}'",
                ],
            ),
        )
        cdk.CfnOutput(self, "GatewayUrl", value=f"https://{self.public_alb.load_balancer_dns_name}")
        cdk.CfnOutput(self, "ConsoleUrl", value=f"https://{self.admin_alb.load_balancer_dns_name}")

        NagSuppressions.add_resource_suppressions(
            [self.public_alb, self.admin_alb],
            [
                {
                    "id": "AwsSolutions-ELB2",
                    "reason": "Access logs would store every request path, and the gateway's paths carry the access "
                    "key (/ak/<key>/...); the gateway's own access log records requests without it.",
                }
            ],
        )
        NagSuppressions.add_resource_suppressions(
            network.public_alb_sg,
            [{"id": "AwsSolutions-EC23", "reason": "The public gateway: Claude Code users connect from anywhere."}],
        )
        NagSuppressions.add_stack_suppressions(
            self,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "ECS execution roles get logs:CreateLogStream on their log group's streams (group/*) and "
                    "PutMetricData allows no resource other than *; it is bounded by the namespace condition.",
                    "applies_to": ["Resource::*"],
                },
                {
                    "id": "AwsSolutions-ECS2",
                    "reason": "Plain settings go in environment variables; secrets are injected from Secrets Manager.",
                },
            ],
        )
