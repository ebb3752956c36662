"""Keep a scraper's bearer token file fresh: sign in to Airflow (``POST /auth/token``) as the metrics
user and write the JWT to a file, again every ``--every`` seconds (Airflow's tokens expire, 24 h by
default; Prometheus reads ``credentials_file`` again at every scrape).

    python -m baseline_guard.ui.token_file --url http://airflow-apiserver:8080 --username metrics \\
        --passwords-file /run/secrets/airflow_passwords --out /token/metrics-token [--every 3600] [--once]

The password is read from the passwords file (``{"metrics": "..."}``, as ``baseline_guard.access`` reads
it), never from the command line. The token file is replaced atomically, mode 600 (``--owner UID:GID``:
the scraper's user, when this runs as root).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from baseline_guard.access import read_passwords


def fetch_token(url: str, username: str, password: str, *, timeout: float = 30) -> str:
    r = httpx.post(
        f"{url.rstrip('/')}/auth/token", json={"username": username, "password": password}, timeout=timeout
    )
    if r.status_code not in (200, 201):
        raise RuntimeError(
            f"sign-in as {username!r} at {url} failed: HTTP {r.status_code} (expected 201 with a token)"
        )
    return str(r.json()["access_token"])


def write_token(path: Path, token: str, owner: tuple[int, int] | None = None) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(token)
        os.chmod(tmp, 0o600)
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m baseline_guard.ui.token_file", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--url", required=True, help="Airflow's base URL")
    parser.add_argument("--username", default="metrics")
    parser.add_argument("--passwords-file", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--every", type=float, default=3600.0, help="seconds between sign-ins")
    parser.add_argument("--owner", help="UID:GID of the token file")
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args(argv)
    try:
        password = read_passwords(args.passwords_file)[args.username]
    except (ValueError, KeyError) as err:
        print(f"error: no password for {args.username!r}: {err}", file=sys.stderr)
        return 2
    owner = tuple(int(x) for x in args.owner.split(":")) if args.owner else None
    while True:
        try:
            write_token(args.out, fetch_token(args.url, args.username, password), owner)  # type: ignore[arg-type]
            print(f"token for {args.username!r} written to {args.out}", flush=True)
        except (httpx.HTTPError, RuntimeError) as err:
            print(f"error: {err}; trying again in 60 s", file=sys.stderr, flush=True)
            if args.once:
                return 1
            time.sleep(60)
            continue
        if args.once:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
