"""kernelkit.provisioning (see DESIGN.md, Layers)."""
