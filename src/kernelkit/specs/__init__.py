"""kernelkit.specs (see DESIGN.md, Layers)."""
