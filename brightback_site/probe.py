"""Print shell exports pointing the tests at PostgreSQL and Redis when they answer on this machine.

`make test` evals the output; variables already set are kept, so CI or a developer can force either.
"""

from __future__ import annotations

import os
import shlex
import socket

PG_URL = "postgres://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/15"


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def main() -> None:
    if "DATABASE_URL" not in os.environ and answers("127.0.0.1", 5432):
        print(f"export DATABASE_URL={shlex.quote(PG_URL)}")
    if "REDIS_URL" not in os.environ and answers("127.0.0.1", 6379):
        print(f"export REDIS_URL={shlex.quote(REDIS_URL)}")


if __name__ == "__main__":
    main()
