"""kernelkit.discovery (see DESIGN.md, Layers)."""
