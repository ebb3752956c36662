"""Small S3 helpers shared by backup, manifest, restore and retention (boto3 client passed in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypedDict

from botocore.exceptions import ClientError

from baseline_guard.errors import InvalidInput

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef, ObjectTypeDef

MIB = 1024 * 1024


class SseArgs(TypedDict, total=False):
    """The SSE keyword arguments of ``put_object`` / ``create_multipart_upload``."""

    ServerSideEncryption: Literal["AES256", "aws:kms"]
    SSEKMSKeyId: str


@dataclass(frozen=True)
class ServerSideEncryption:
    """S3 server-side encryption for everything a backup writes: ``AES256`` or ``aws:kms`` (+ key id)."""

    algorithm: Literal["AES256", "aws:kms"] = "AES256"
    kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in ("AES256", "aws:kms"):
            raise InvalidInput(f"server-side encryption {self.algorithm!r}: expected 'AES256' or 'aws:kms'")
        if self.kms_key_id and self.algorithm != "aws:kms":
            raise InvalidInput("a KMS key id was given but encryption is not 'aws:kms'")

    @classmethod
    def parse(cls, algorithm: str | None, kms_key_id: str | None = None) -> ServerSideEncryption | None:
        """From operator arguments: None/'' or 'none' means no SSE header (bucket default applies)."""
        if not algorithm or algorithm.lower() == "none":
            if kms_key_id:
                raise InvalidInput("a KMS key id was given without sse='aws:kms'")
            return None
        match algorithm:
            case "AES256" | "aws:kms":
                return cls(algorithm, kms_key_id or None)
        raise InvalidInput(f"server-side encryption {algorithm!r}: expected 'AES256' or 'aws:kms'")

    def put_args(self) -> SseArgs:
        args: SseArgs = {"ServerSideEncryption": self.algorithm}
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args


def sse_args(sse: ServerSideEncryption | None) -> SseArgs:
    return sse.put_args() if sse else {}


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def is_not_found(err: ClientError) -> bool:
    return error_code(err) in ("404", "NoSuchKey", "NotFound")


def is_precondition_failed(err: ClientError) -> bool:
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(err) in ("PreconditionFailed", "412") or status == 412


def head_or_none(client: S3Client, bucket: str, key: str) -> HeadObjectOutputTypeDef | None:
    """HEAD an object; None when it does not exist."""
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if is_not_found(err):
            return None
        raise


def get_bytes_or_none(client: S3Client, bucket: str, key: str) -> bytes | None:
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if is_not_found(err):
            return None
        raise


def put_once(
    client: S3Client,
    bucket: str,
    key: str,
    body: bytes,
    sse: ServerSideEncryption | None,
    content_type: str = "application/json",
) -> bool:
    """Create ``key`` unless it exists (``IfNoneMatch='*'``). False when it already existed."""
    try:
        client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*", **sse_args(sse)
        )
    except ClientError as err:
        if is_precondition_failed(err):
            return False
        raise
    return True


def list_keys(client: S3Client, bucket: str, prefix: str) -> list[ObjectTypeDef]:
    """All objects under ``prefix`` (``Key``, ``Size``, ``LastModified``)."""
    found: list[ObjectTypeDef] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(page.get("Contents", []))
    return found
