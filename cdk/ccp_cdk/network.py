"""NetworkStack: a VPC over two AZs, endpoints that keep AWS traffic off the NAT, and the
security groups that say who may talk to whom."""

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from cdk_nag import NagSuppressions
from constructs import Construct

from .settings import PORTS, Settings


class NetworkStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: Settings, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH)
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        # Bedrock, KMS, Secrets Manager, CloudWatch, logs and the image registry without the NAT.
        app_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        for name, service in [
            ("BedrockRuntime", ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME),
            ("Kms", ec2.InterfaceVpcEndpointAwsService.KMS),
            ("SecretsManager", ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER),
            ("CloudWatch", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING),
            ("Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS),
            ("EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR),
            ("EcrDocker", ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER),
        ]:
            endpoint = self.vpc.add_interface_endpoint(name, service=service, subnets=app_subnets)
            NagSuppressions.add_resource_suppressions(
                endpoint,
                [
                    {
                        "id": "CdkNagValidationFailure",
                        "reason": "The endpoint's security group admits HTTPS from the VPC's own CIDR, a token "
                        "AwsSolutions-EC23 cannot evaluate; nothing outside the VPC reaches it.",
                    }
                ],
                apply_to_children=True,
            )
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)

        def group(name: str, description: str) -> ec2.SecurityGroup:
            return ec2.SecurityGroup(self, name, vpc=self.vpc, description=description, allow_all_outbound=True)

        self.public_alb_sg = group("PublicAlbSg", "Public ALB: HTTPS (and the HTTP redirect) from anywhere")
        self.public_alb_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS from Claude Code users")
        self.public_alb_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP, redirected to HTTPS")
        self.admin_alb_sg = group("AdminAlbSg", "Internal ALB of the console: only from the admin CIDRs")
        for cidr in settings.admin_cidrs:
            self.admin_alb_sg.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), f"console from {cidr}")
        self.gateway_sg = group("GatewaySg", "Gateway tasks: the public ALB only")
        self.gateway_sg.add_ingress_rule(self.public_alb_sg, ec2.Port.tcp(PORTS["gateway"]), "from the public ALB")
        self.console_sg = group("ConsoleSg", "Console tasks: the internal ALB only")
        self.console_sg.add_ingress_rule(self.admin_alb_sg, ec2.Port.tcp(PORTS["console"]), "from the internal ALB")
        self.admin_sg = group("AdminSg", "Admin API tasks: the internal ALB and the console")
        self.admin_sg.add_ingress_rule(self.admin_alb_sg, ec2.Port.tcp(PORTS["admin"]), "from the internal ALB")
        self.admin_sg.add_ingress_rule(self.console_sg, ec2.Port.tcp(PORTS["admin"]), "from the console's server")
