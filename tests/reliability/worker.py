"""A push worker process for the crash tests: pushes until nothing is due, then exits 0."""

from __future__ import annotations

import os
import sys

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from sync.prestashop.client import PrestaShopClient
from sync.services.push import push_pending
from sync.services.unit_of_work import UnitOfWork


def main() -> int:
    options = {}
    if os.environ.get("STORE_SEARCH_PATH"):
        options["connect_args"] = {"options": f"-csearch_path={os.environ['STORE_SEARCH_PATH']}"}
    engine = create_engine(os.environ["STORE_URL"], **options)
    client = PrestaShopClient(os.environ["SHOP_URL"], os.environ["SHOP_KEY"], timeout=(2, 2), sleep=lambda seconds: None)
    with Session(engine) as session:
        for _ in range(50):
            report = push_pending(UnitOfWork(session), client, workers=int(os.environ.get("WORKERS", "1")))
            if report.error:
                print(report.error, file=sys.stderr)
                return 2
            if report.orders == 0:
                return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
