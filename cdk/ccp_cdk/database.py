"""DatabaseStack: Aurora PostgreSQL Serverless v2 in the isolated subnets, encrypted, backed
up, protected from deletion, its generated credentials in Secrets Manager with rotation."""

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from cdk_nag import NagSuppressions
from constructs import Construct

from .network import NetworkStack
from .settings import Settings

DATABASE_NAME = "ccp"


class DatabaseStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, network: NetworkStack, settings: Settings, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.security_group = ec2.SecurityGroup(
            self, "DatabaseSg", vpc=network.vpc, description="Aurora: the services only", allow_all_outbound=False
        )
        for source, name in [(network.gateway_sg, "gateway"), (network.admin_sg, "admin API and migrations")]:
            self.security_group.add_ingress_rule(source, ec2.Port.tcp(5432), f"PostgreSQL from the {name}")
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_17_9),
            writer=rds.ClusterInstance.serverless_v2("writer"),
            readers=[rds.ClusterInstance.serverless_v2("reader", scale_with_writer=True)],
            serverless_v2_min_capacity=settings.db_min_acu,
            serverless_v2_max_capacity=settings.db_max_acu,
            vpc=network.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.security_group],
            credentials=rds.Credentials.from_generated_secret("ccp_app"),
            default_database_name=DATABASE_NAME,
            storage_encrypted=True,
            backup=rds.BackupProps(retention=cdk.Duration.days(14)),
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.SNAPSHOT,
            iam_authentication=settings.db_iam_auth,
            cloudwatch_logs_exports=["postgresql"],
        )
        self.secret = self.cluster.secret
        # Rotation Lambda in the app subnets (it reaches Secrets Manager through the endpoint).
        self.cluster.add_rotation_single_user(
            automatically_after=cdk.Duration.days(30),
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        )
        if not settings.db_iam_auth:
            NagSuppressions.add_resource_suppressions(
                self.cluster,
                [
                    {
                        "id": "AwsSolutions-RDS6",
                        "reason": "IAM database authentication is optional (context dbIamAuth); the services use the "
                        "generated, rotated password from Secrets Manager.",
                    }
                ],
            )
        NagSuppressions.add_resource_suppressions(
            self.cluster,
            [
                {
                    "id": "AwsSolutions-RDS10",
                    "reason": "Deletion protection is on; RDS10 also wants the removal policy RETAIN, and SNAPSHOT "
                    "is chosen so a deliberate stack deletion still keeps a final snapshot.",
                },
                {
                    "id": "AwsSolutions-RDS14",
                    "reason": "Backtrack is not available for Aurora PostgreSQL.",
                },
            ],
            apply_to_children=True,
        )
