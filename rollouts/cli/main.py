"""`kubectl rollouts` (the `kubectl-rollouts` executable kubectl finds on PATH)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from rollouts import __version__, schema


def _lint(args: argparse.Namespace, out: TextIO) -> int:
    """Check manifests against the CRD schemas, without a cluster."""
    crds = schema.load_crds()
    problems = 0
    checked = 0
    path = Path(args.filename)
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except (OSError, yaml.YAMLError) as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    for doc in documents:
        if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith("pyrollouts.io/"):
            continue
        checked += 1
        name = f'{doc.get("kind", "?")} "{(doc.get("metadata") or {}).get("name", "")}"'
        for error in schema.validate_object(crds, doc):
            problems += 1
            print(f"{path}: {name}: {error}", file=out)
    if problems:
        print(f"{problems} problem(s) in {checked} object(s)", file=out)
        return 1
    print(f"{path}: {checked} object(s) valid", file=out)
    return 0


def _version(_args: argparse.Namespace, out: TextIO) -> int:
    print(f"kubectl-rollouts: v{__version__}", file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl rollouts", description="Manage pyrollouts Rollouts.")
    sub = parser.add_subparsers(dest="verb", required=True)
    version = sub.add_parser("version", help="print the plugin's version")
    version.set_defaults(func=_version)
    lint = sub.add_parser("lint", help="check Rollout and analysis manifests against the CRD schemas")
    lint.add_argument("-f", "--filename", required=True, help="a YAML file with one or more documents")
    lint.set_defaults(func=_lint)
    return parser


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: Any = args.func(args, out or sys.stdout)
    return int(result)


if __name__ == "__main__":
    sys.exit(main())
