"""SecretsStack: the KMS key that wraps stored Bedrock API keys, the generated pepper and
session secret, and the task roles that may use them (so the key policy can name them)."""

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as sm
from cdk_nag import NagSuppressions
from constructs import Construct

from .settings import KMS_CONTEXT_PURPOSE


class SecretsStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        tasks = iam.ServicePrincipal("ecs-tasks.amazonaws.com")
        self.gateway_role = iam.Role(self, "GatewayTaskRole", assumed_by=tasks, description="ccp-gateway tasks")
        self.admin_role = iam.Role(self, "AdminTaskRole", assumed_by=tasks, description="ccp-admin-server tasks and the migration task")

        self.bedrock_key_wrap = kms.Key(
            self,
            "BedrockKeyWrap",
            alias="alias/ccp-bedrock-keys",
            description="Wraps the Bedrock API keys stored per access key (CCP_KEY_WRAPPER=kms)",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # Only with the encryption context the code sends (core/src/crypto.rs: purpose and
        # access_key_id), so a ciphertext cannot be opened for anything else. The gateway
        # only decrypts; the admin server wraps new keys and re-wraps them on rotation.
        context = {
            "StringEquals": {"kms:EncryptionContext:purpose": KMS_CONTEXT_PURPOSE},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["purpose", "access_key_id"]},
        }
        for role, actions, sid in [
            (self.gateway_role, ["kms:Decrypt"], "GatewayUnwrapsBedrockKeys"),
            (self.admin_role, ["kms:Encrypt", "kms:Decrypt"], "AdminWrapsBedrockKeys"),
        ]:
            self.bedrock_key_wrap.add_to_resource_policy(
                iam.PolicyStatement(sid=sid, principals=[role], actions=actions, resources=["*"], conditions=context)
            )
            role.add_to_policy(
                iam.PolicyStatement(actions=actions, resources=[self.bedrock_key_wrap.key_arn], conditions=context)
            )

        def generated(name: str, description: str) -> sm.Secret:
            return sm.Secret(
                self,
                name,
                description=description,
                generate_secret_string=sm.SecretStringGenerator(password_length=48, exclude_punctuation=True),
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )

        self.pepper = generated("Pepper", "CCP_PEPPER: HMAC pepper of access-key digests")
        self.session_secret = generated("SessionSecret", "CCP_SESSION_SECRET: signs admin session tokens")
        # Read at container start by each service's execution role (ECS injects them as
        # variables); the ComputeStack grants exactly the services that need each one.
        for secret in (self.pepper, self.session_secret):
            NagSuppressions.add_resource_suppressions(
                secret,
                [
                    {
                        "id": "AwsSolutions-SMG4",
                        "reason": "Not rotated automatically: a new pepper invalidates every issued access key and a "
                        "new session secret ends every admin session; docs/deploy.md gives the manual procedure.",
                    }
                ],
            )
