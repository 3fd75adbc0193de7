"""`python -m parjanya.sim`: the sim without the Parjanya CLI, to spawn as a child process."""

from __future__ import annotations

import argparse

from parjanya.config import DEFAULT_SIM_PORT
from parjanya.sim.server import DEFAULT_HOST, run_cli


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m parjanya.sim", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_SIM_PORT)
    parser.add_argument("--latency-scale", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--fault-config", default=None, help="JSON file shaped like FaultsConfig")
    args = parser.parse_args(argv)
    run_cli(args.host, args.port, args.latency_scale, args.seed, args.fault_config)


if __name__ == "__main__":
    main()
