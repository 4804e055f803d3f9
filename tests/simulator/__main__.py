"""Run the simulated shop by hand, for demos:

    python -m tests.simulator --port 8081 --version 8.1.5 --key <32 chars> --orders 1001-1300
    python -m tests.simulator --recorded --key <32 chars>     # the shop the 8.1.2 recording starts from

Prints the base URL and the key, then serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import string
import sys
import threading

from .server import ShopSimulator


def _ids(text: str) -> list[int]:
    """ "1001-1300", "5,7,9-12" → ids."""
    ids: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = part.partition("-")
        ids.extend(range(int(low), int(high or low) + 1))
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulator", description="A simulated PrestaShop webservice.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--version", default="8.1.5", help='PrestaShop version to play ("1.7.8.11" = 1.7 mode, no PATCH)')
    parser.add_argument("--key", help="webservice key, 32 characters (default: a random one)")
    parser.add_argument("--orders", default="", help='orders to create, e.g. "1001-1300" (state 2, one carrier row each)')
    parser.add_argument("--languages", default="1,2", help="language ids (1 = en, 2 = fr)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the order references")
    parser.add_argument(
        "--recorded", action="store_true", help="start from the recorded PrestaShop 8.1.2 shop (orders 1-5; ignores --version, --languages)"
    )
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)

    key = args.key or "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(32))
    if len(key) != 32:
        parser.error("--key must be 32 characters long (PrestaShop refuses other lengths, code 18)")
    if args.recorded:
        sim = ShopSimulator.recorded_8_1_2(key=key, host=args.host, port=args.port, seed=args.seed)
    else:
        sim = ShopSimulator(
            version=args.version,
            key=key,
            languages=[int(x) for x in args.languages.split(",") if x.strip()],
            host=args.host,
            port=args.port,
            seed=args.seed,
        )
    for id_order in _ids(args.orders):
        sim.add_order(id_order)
    sim.verbose = not args.quiet
    sim.start()
    print(f"PrestaShop {sim.version} simulator: {sim.url}  (webservice: {sim.api_url})", flush=True)
    print(f"key: {key}", flush=True)
    print(f"{len(sim.orders)} orders. Ctrl-C to stop.", flush=True)
    stop = threading.Event()
    # Explicit handlers: a process started in the background may inherit an ignored SIGINT.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
