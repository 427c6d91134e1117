"""Where the product keeps things: the video bucket, the jobs table, API keys and idempotency records."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import (
    API_KEYS_TABLE_KEY,
    IDEMPOTENCY_TABLE_KEY,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    INPUT_PREFIX,
    JOBS_TABLE,
    VIDEO_PREFIX,
)
from infra.nag import acknowledge
from infra.options import StackOptions

NONCURRENT_VERSION_DAYS = 30
ACCESS_LOG_DAYS = 90


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, options: StackOptions) -> None:
        super().__init__(scope, construct_id)
        data_removal = RemovalPolicy.RETAIN if options.retain_data else RemovalPolicy.DESTROY

        self.key: kms.Key | None = None
        if options.bucket_kms:
            self.key = kms.Key(
                self,
                "VideoKey",
                description="Encrypts the videogen video bucket",
                enable_key_rotation=True,
                # A retained bucket's objects stay readable only while their key exists.
                removal_policy=data_removal,
                pending_window=Duration.days(30),
            )

        access_logs: s3.Bucket | None = None
        if options.access_logs:
            access_logs = s3.Bucket(
                self,
                "AccessLogs",
                # Server access logs can only be delivered to an SSE-S3 bucket.
                encryption=s3.BucketEncryption.S3_MANAGED,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                enforce_ssl=True,
                minimum_tls_version=1.2,
                lifecycle_rules=[
                    s3.LifecycleRule(
                        id="expire-access-logs",
                        expiration=Duration.days(ACCESS_LOG_DAYS),
                        abort_incomplete_multipart_upload_after=Duration.days(1),
                    )
                ],
                removal_policy=data_removal,
            )
            acknowledge(
                access_logs,
                "AwsSolutions-S1",
                "This is the access-log destination of the video bucket; logging its own access would log the "
                "log deliveries themselves.",
            )

        self.bucket = s3.Bucket(
            self,
            "Videos",
            encryption=s3.BucketEncryption.KMS if self.key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=self.key,
            bucket_key_enabled=True if self.key else None,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=options.versioning,
            lifecycle_rules=self._lifecycle(options),
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="videos-bucket/" if access_logs else None,
            removal_policy=data_removal,
        )
        # S3 -> EventBridge notifications (the inbox rule: infra/intake.py), set on the bucket resource itself:
        # Bucket(event_bridge_enabled=True) would add a custom resource and its Lambda (with a managed policy
        # and s3:PutBucketNotification) for what CloudFormation's NotificationConfiguration does natively.
        bucket_resource = self.bucket.node.default_child
        assert isinstance(bucket_resource, s3.CfnBucket)
        bucket_resource.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
        if access_logs is None:
            acknowledge(
                self.bucket,
                "AwsSolutions-S1",
                "Server access logs are optional (context accessLogs=true) to keep the default stack cheap; only "
                "the stack's own roles and the API's short-lived presigned links reach the objects.",
            )

        self.jobs = dynamodb.Table(
            self,
            "Jobs",
            partition_key=dynamodb.Attribute(name=JOBS_TABLE.partition_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=JOBS_TABLE.ttl_attribute,
            removal_policy=data_removal,
        )
        self.jobs.add_global_secondary_index(
            index_name=JOBS_TABLE.owner_index,
            partition_key=dynamodb.Attribute(name=JOBS_TABLE.owner_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=JOBS_TABLE.owner_sort_key, type=dynamodb.AttributeType.NUMBER),
            projection_type=dynamodb.ProjectionType.ALL,
        )

        self.api_keys = dynamodb.Table(
            self,
            "ApiKeys",
            partition_key=dynamodb.Attribute(name=API_KEYS_TABLE_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=data_removal,
        )

        self.idempotency = dynamodb.Table(
            self,
            "Idempotency",
            partition_key=dynamodb.Attribute(name=IDEMPOTENCY_TABLE_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
            # Records live 24 hours: nothing here outlives a redeploy's worth of interest.
            removal_policy=RemovalPolicy.DESTROY,
        )

    @staticmethod
    def _lifecycle(options: StackOptions) -> list[s3.LifecycleRule]:
        rules = [
            s3.LifecycleRule(
                id="abort-incomplete-multipart-uploads",
                abort_incomplete_multipart_upload_after=Duration.days(1),
                noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS) if options.versioning else None,
            )
        ]
        for name, prefix, expire, cold in (
            ("videos", VIDEO_PREFIX, options.video_expiration_days, options.video_infrequent_access_days),
            ("inputs", INPUT_PREFIX, options.input_expiration_days, options.input_infrequent_access_days),
        ):
            if expire is None and cold is None:
                continue
            rules.append(
                s3.LifecycleRule(
                    id=f"{name}-lifecycle",
                    prefix=prefix,
                    expiration=Duration.days(expire) if expire is not None else None,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(cold)
                        )
                    ]
                    if cold is not None
                    else None,
                )
            )
        return rules
