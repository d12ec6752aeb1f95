"""``python -m kernelkit.testing CONNECTION_FILE [options]``: the fake kernel process."""

from kernelkit.testing._process import main

if __name__ == "__main__":
    raise SystemExit(main())
