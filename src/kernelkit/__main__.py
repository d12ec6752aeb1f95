"""``python -m kernelkit``: the command line."""

from kernelkit.cli import main

main()
