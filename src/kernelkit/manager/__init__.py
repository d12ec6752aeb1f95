"""kernelkit.manager (see DESIGN.md, Layers)."""
