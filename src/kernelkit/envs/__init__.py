"""kernelkit.envs (see DESIGN.md, Layers)."""
