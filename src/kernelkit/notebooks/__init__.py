"""Notebooks that find their kernel, and running them without jupyter_client."""
