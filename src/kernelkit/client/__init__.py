"""kernelkit.client (see DESIGN.md, Layers)."""
