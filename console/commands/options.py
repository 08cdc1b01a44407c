"""Options and helpers shared by several sub-commands."""

from __future__ import annotations

import argparse

from core import config
from core.model import ClusterConfig


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"cluster file (default: ./cluster.toml, then ${config.ENV_CONFIG})",
    )


def add_read_only(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--read-only", action="store_true", help="observe only: refuse every change to a host")


def load_config(args: argparse.Namespace) -> ClusterConfig:
    return config.load(config.resolve_path(args.config))


def add_take_over(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--take-over",
        action="store_true",
        help="take the cluster even while another controller holds it (that one is fenced off the hosts)",
    )
