"""A real S3 endpoint over HTTP on 127.0.0.1: moto in server mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # moto is imported only to start a server: `local_stack env` / `down` stay quick
    from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCESS_KEY = "bg-local-access"
SECRET_KEY = "bg-local-secret"  # moto accepts any credentials; fixed so local runs are repeatable


@dataclass
class LocalS3:
    port: int
    host: str = "127.0.0.1"
    _server: ThreadedMotoServer | None = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalS3:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self):  # -> botocore S3 client
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def airflow_connection(self, bucket: str | None = None) -> dict[str, object]:
        """The connection in Airflow's JSON form (for ``AIRFLOW_CONN_<ID>``); with ``bucket``, the
        backup store's: the bucket named where the Amazon provider keeps it."""
        return s3_connection(self.endpoint_url, bucket)


def s3_connection(endpoint_url: str, bucket: str | None = None) -> dict[str, object]:
    """An ``aws`` connection to an S3 endpoint in Airflow's JSON form, naming ``bucket`` in its extra
    (``service_config.s3.bucket_name``, read by ``BackupStoreHook``) when given."""
    extra: dict[str, object] = {"region_name": REGION, "endpoint_url": endpoint_url}
    if bucket:
        extra["service_config"] = {"s3": {"bucket_name": bucket}}
    return {"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY, "extra": extra}
