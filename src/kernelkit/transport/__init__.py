"""kernelkit.transport (see DESIGN.md, Layers)."""
