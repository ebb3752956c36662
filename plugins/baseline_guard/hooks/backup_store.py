"""The backup store: the S3 bucket that holds backups, manifests, reports and drill records.

One connection (``aws_backups``) names the endpoint, the credentials *and* the bucket, in the
Amazon provider's own place for it: the connection extra
``{"service_config": {"s3": {"bucket_name": "..."}}}``. Nothing else reads the bucket name.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from baseline_guard.errors import InvalidInput

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BACKUPS_CONN_ID = "aws_backups"


class BackupStoreHook(S3Hook):
    """``S3Hook`` bound to the backup store's connection and bucket.

    :param aws_conn_id: Airflow connection of the S3 endpoint; its extra names the bucket
    """

    default_conn_name = BACKUPS_CONN_ID
    hook_name = "Baseline Guard backup store"

    def __init__(self, aws_conn_id: str | None = BACKUPS_CONN_ID, **kwargs: Any) -> None:
        super().__init__(aws_conn_id=aws_conn_id, **kwargs)

    @cached_property
    def bucket(self) -> str:
        """The bucket named by the connection (``service_config.s3.bucket_name``)."""
        name = self.service_config.get("bucket_name")
        if not name:
            raise InvalidInput(
                f"connection {self.aws_conn_id!r} names no bucket: expected the extra "
                '{"service_config": {"s3": {"bucket_name": "<bucket>"}}}'
            )
        return str(name)

    @cached_property
    def client(self) -> S3Client:
        """The boto3 S3 client (built once per hook)."""
        return self.get_conn()

    def test_connection(self) -> tuple[bool, str]:
        try:
            bucket = self.bucket
        except InvalidInput as exc:
            return False, str(exc)
        try:
            self.client.head_bucket(Bucket=bucket)
        except Exception as exc:
            return False, f"bucket {bucket!r} not reachable: {exc}"
        return True, f"bucket {bucket!r} reachable"

    def put_new(self, key: str, text: str, content_type: str = "text/plain; charset=utf-8") -> bool:
        """Write ``text`` to ``key`` unless an object is there already (never overwritten); True if written."""
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=text.encode(), ContentType=content_type, IfNoneMatch="*"
            )
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return False
            raise
        return True

    def exists(self, key: str) -> bool:
        """True if an object is stored under ``key``."""
        return bool(self.check_for_key(key, bucket_name=self.bucket))

    def link(self, key: str, expires_in: int) -> str:
        """A presigned URL that reads ``key`` for ``expires_in`` seconds."""
        return str(
            self.generate_presigned_url(
                "get_object", params={"Bucket": self.bucket, "Key": key}, expires_in=expires_in
            )
        )
