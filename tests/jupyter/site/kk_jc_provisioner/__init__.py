"""A jupyter_client provisioner for the tests: jupyter_client's local one, which also
puts its ``marker`` config into the kernel's environment (so a test can see it ran)."""

from __future__ import annotations

from typing import Any

from jupyter_client.provisioning import LocalProvisioner
from traitlets import Unicode


class MarkingProvisioner(LocalProvisioner):  # type: ignore[misc]
    marker = Unicode("", config=True)

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        env = dict(kwargs.get("env") or {})
        env["KK_JC_MARKER"] = self.marker
        kwargs["env"] = env
        result: dict[str, Any] = await super().pre_launch(**kwargs)
        return result
