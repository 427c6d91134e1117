"""The CometAPI key, in Secrets Manager: created with a placeholder, or an existing secret imported by name.

The functions get the secret's *name* in their environment and read the value at run time (Powertools
parameters, cached): the key never appears in the template, the environment or the logs.
"""

from __future__ import annotations

from aws_cdk import SecretValue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, IConstruct

from infra.config import secret_name
from infra.nag import acknowledge
from infra.options import StackOptions

PLACEHOLDER_VALUE = "REPLACE-ME: put your CometAPI key here (see docs/deploy.md)"


def set_secret_command(secret_name: str) -> str:
    return f'aws secretsmanager put-secret-value --secret-id {secret_name} --secret-string "$COMETAPI_KEY"'


class ProviderSecret(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, options: StackOptions, stack_name: str) -> None:
        super().__init__(scope, construct_id)
        self.imported = options.comet_api_key_secret_name is not None
        if options.comet_api_key_secret_name is not None:
            self.secret_name = options.comet_api_key_secret_name
            self.secret: secretsmanager.ISecret = secretsmanager.Secret.from_secret_name_v2(
                self, "CometApiKey", self.secret_name
            )
        else:
            self.secret_name = secret_name(stack_name)
            created = secretsmanager.Secret(
                self,
                "CometApiKey",
                secret_name=self.secret_name,
                description=(
                    "The CometAPI key videogen's functions call the provider with. Created with a placeholder: "
                    f"set the real key with: {set_secret_command(self.secret_name)}. A redeploy keeps the value."
                ),
                # Not a secret: the placeholder the user replaces. CloudFormation never writes it again,
                # because the template's value does not change between deploys.
                secret_string_value=SecretValue.unsafe_plain_text(PLACEHOLDER_VALUE),
            )
            acknowledge(
                created,
                "AwsSolutions-SMG4",
                "A third-party API key: it can only be rotated in the CometAPI console, so a rotation Lambda "
                "has nothing to call; replace the value with put-secret-value after rotating it there.",
            )
            self.secret = created

    def grant_read(self, grantee: iam.IGrantable, scope: IConstruct) -> None:
        """Lets ``grantee`` read the key: this secret only (``scope`` is where an acknowledgment goes)."""
        self.secret.grant_read(grantee)
        if self.imported:
            acknowledge(
                scope,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:"
                f"secret:{self.secret_name}-??????]",
                "An imported secret is known by name only; Secrets Manager appends six random characters to "
                "its ARN, which the ?????? wildcard (exactly six characters) matches and nothing else.",
            )
