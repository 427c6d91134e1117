"""Storage: the video bucket and the tables, as synthesised (default stack, and with every option on)."""

from __future__ import annotations

from typing import Any

from infra.config import (
    API_KEYS_TABLE_KEY,
    IDEMPOTENCY_TABLE_KEY,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    INPUT_PREFIX,
    JOBS_TABLE,
    VIDEO_PREFIX,
)
from tests.infra.conftest import Template


def video_bucket(template: Template) -> tuple[str, dict[str, Any]]:
    name = template.by_path("/Storage/Videos/Resource")
    return name, template.resources[name]


def bucket_policy_statements(template: Template, bucket: str) -> list[dict[str, Any]]:
    for policy in template.of_type("AWS::S3::BucketPolicy").values():
        if policy["Properties"]["Bucket"] == {"Ref": bucket}:
            statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
            return statements
    raise AssertionError(f"no bucket policy for {bucket}")


def table(template: Template, name: str) -> dict[str, Any]:
    return template.props(template.by_path(f"/Storage/{name}/Resource"))


def test_video_bucket_blocks_public_access_and_is_encrypted_by_s3(template: Template) -> None:
    # Given the default stack / Then the video bucket refuses public access and uses SSE-S3
    _, bucket = video_bucket(template)
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "VersioningConfiguration" not in props
    assert "LoggingConfiguration" not in props
    # videos are data: the bucket outlives the stack
    assert bucket["DeletionPolicy"] == "Retain"


def test_video_bucket_policy_denies_plain_http_and_old_tls(template: Template) -> None:
    name, _ = video_bucket(template)
    denies = [s for s in bucket_policy_statements(template, name) if s["Effect"] == "Deny"]
    conditions = [s["Condition"] for s in denies]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions
    assert all(s["Action"] == "s3:*" and s["Principal"] == {"AWS": "*"} for s in denies)


def test_lifecycle_aborts_incomplete_multipart_uploads_after_one_day(template: Template) -> None:
    _, bucket = video_bucket(template)
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules == [
        {
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            "Id": "abort-incomplete-multipart-uploads",
            "Status": "Enabled",
        }
    ]


def test_options_add_kms_versioning_access_logs_and_prefix_lifecycles(full: Template) -> None:
    # Given every storage option on
    _, bucket = video_bucket(full)
    props = bucket["Properties"]
    # Then the bucket is encrypted with a rotated customer-managed key (bucket key on)
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_id = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    assert full.props(key_id)["EnableKeyRotation"] is True
    assert rule["BucketKeyEnabled"] is True
    # versioned, with old versions expiring
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    # videos go to Standard-IA after 30 days and expire after a year; inputs expire after a week
    assert rules["videos-lifecycle"]["Prefix"] == VIDEO_PREFIX
    assert rules["videos-lifecycle"]["ExpirationInDays"] == 365
    assert rules["videos-lifecycle"]["Transitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]
    assert rules["inputs-lifecycle"] == {
        "ExpirationInDays": 7,
        "Id": "inputs-lifecycle",
        "Prefix": INPUT_PREFIX,
        "Status": "Enabled",
    }
    # access logs go to their own SSE-S3 bucket, which is as locked down
    logs_bucket = props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    logs_props = full.props(logs_bucket)
    [logs_rule] = logs_props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert logs_rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert all(logs_props["PublicAccessBlockConfiguration"].values())
    assert any(
        s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in bucket_policy_statements(full, logs_bucket)
    )
    # retainData=false: the bucket goes with the stack
    assert bucket["DeletionPolicy"] == "Delete"


def test_jobs_table_matches_the_config_the_local_stack_uses(template: Template) -> None:
    # Given the jobs table / Then its keys, index and TTL are infra.config's (local/resources.py builds the same)
    props = table(template, "Jobs")
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": JOBS_TABLE.ttl_attribute, "Enabled": True}
    assert props["KeySchema"] == [{"AttributeName": JOBS_TABLE.partition_key, "KeyType": "HASH"}]
    [index] = props["GlobalSecondaryIndexes"]
    assert index == {
        "IndexName": JOBS_TABLE.owner_index,
        "KeySchema": [
            {"AttributeName": JOBS_TABLE.owner_key, "KeyType": "HASH"},
            {"AttributeName": JOBS_TABLE.owner_sort_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {JOBS_TABLE.partition_key: "S", JOBS_TABLE.owner_key: "S", JOBS_TABLE.owner_sort_key: "N"}
    assert template.resources[template.by_path("/Storage/Jobs/Resource")]["DeletionPolicy"] == "Retain"


def test_api_key_and_idempotency_tables(template: Template) -> None:
    keys = table(template, "ApiKeys")
    assert keys["KeySchema"] == [{"AttributeName": API_KEYS_TABLE_KEY, "KeyType": "HASH"}]
    assert keys["BillingMode"] == "PAY_PER_REQUEST"
    assert keys["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    idempotency = table(template, "Idempotency")
    assert idempotency["KeySchema"] == [{"AttributeName": IDEMPOTENCY_TABLE_KEY, "KeyType": "HASH"}]
    assert idempotency["TimeToLiveSpecification"] == {
        "AttributeName": IDEMPOTENCY_TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert idempotency["BillingMode"] == "PAY_PER_REQUEST"
