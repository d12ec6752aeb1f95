"""The ``kernelkit`` command line (typer + rich). Nothing imports this package."""

from __future__ import annotations

from kernelkit.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``kernelkit`` console script."""
    app()
