"""A notebook file (nbformat 4) read and written without nbformat, and the outputs of
its cells built from IOPub messages as Jupyter's frontends and nbclient build them."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kernelkit._errors import NotebookError
from kernelkit.protocol import Message

__all__ = ["CellOutputs", "Notebook", "joined"]


def joined(value: object) -> str:
    """A multiline string as nbformat stores it (a string or a list of lines) as one."""
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return value if isinstance(value, str) else ""


def _split(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _is_json_mime(mime: str) -> bool:
    return mime == "application/json" or mime.endswith("+json")


def _stored_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """Mime bundle values as nbformat writes them: text split into lines."""
    return {
        mime: _split(value) if isinstance(value, str) and not _is_json_mime(mime) else value
        for mime, value in data.items()
    }


def _stored_output(output: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(output)
    if out.get("output_type") == "stream" and isinstance(out.get("text"), str):
        out["text"] = _split(out["text"])
    if isinstance(out.get("data"), Mapping):
        out["data"] = _stored_data(out["data"])
    return out


@dataclass
class Notebook:
    """One notebook document: ``data`` is its JSON object, as read."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Notebook:
        """Read a notebook file.

        Raises:
            NotebookError: unreadable, not JSON, or not an nbformat 4 notebook.
        """
        where = Path(path)
        try:
            data = orjson.loads(where.read_bytes())
        except OSError as exc:
            raise NotebookError(f"cannot read notebook {where}: {exc.strerror or exc}") from exc
        except orjson.JSONDecodeError as exc:
            raise NotebookError(f"{where} is not a notebook: invalid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
            raise NotebookError(f"{where} is not a notebook: no 'cells' list at the top level")
        if data.get("nbformat") != 4:
            raise NotebookError(
                f"{where} is nbformat {data.get('nbformat')!r}; kernelkit runs nbformat 4 "
                "notebooks (convert it with `jupyter nbconvert --to notebook`)"
            )
        if not isinstance(data.get("metadata"), dict):
            data["metadata"] = {}
        return cls(where, data)

    @property
    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self.data["metadata"]
        return metadata

    @property
    def code_cells(self) -> list[dict[str, Any]]:
        """The code cells, in order (the dicts themselves: changing them changes the
        notebook)."""
        return [
            c for c in self.data["cells"] if isinstance(c, dict) and c.get("cell_type") == "code"
        ]

    def write(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the notebook (to ``path``, default where it was read) as nbformat does:
        sorted keys, one-space indent, atomically.

        Raises:
            NotebookError: it cannot be written there.
        """
        where = Path(path) if path is not None else self.path
        text = json.dumps(self.data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{where.name}.", dir=where.parent or ".")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(text)
                os.replace(tmp, where)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            raise NotebookError(f"cannot write notebook {where}: {exc.strerror or exc}") from exc
        return where


@dataclass
class CellOutputs:
    """The outputs of one cell, built from its IOPub messages in order (each message one
    output, as nbclient does; ``clear_output(wait=True)`` clears at the next output;
    ``update_display_data`` replaces every output with its display id, in any cell)."""

    outputs: list[dict[str, Any]] = field(default_factory=list)
    execution_count: int | None = None
    displays: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _clear_pending: bool = False

    def add(self, msg: Message) -> None:
        msg_type = msg.header.msg_type
        content = msg.content
        if msg_type == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self.outputs.clear()
            return
        if msg_type == "update_display_data":
            display_id = (content.get("transient") or {}).get("display_id")
            for out in self.displays.get(str(display_id), ()):
                out["data"] = _stored_data(content.get("data") or {})
                out["metadata"] = dict(content.get("metadata") or {})
            return
        if msg_type == "execute_input":
            count = content.get("execution_count")
            self.execution_count = count if isinstance(count, int) else self.execution_count
            return
        output = self._output(msg_type, content)
        if output is None:
            return
        if self._clear_pending:
            self.outputs.clear()
            self._clear_pending = False
        self.outputs.append(output)
        display_id = (content.get("transient") or {}).get("display_id")
        if msg_type == "display_data" and display_id:
            self.displays.setdefault(display_id, []).append(output)

    @staticmethod
    def _output(msg_type: str, content: Mapping[str, Any]) -> dict[str, Any] | None:
        if msg_type == "stream":
            return _stored_output(
                {
                    "output_type": "stream",
                    "name": content.get("name"),
                    "text": content.get("text", ""),
                }
            )
        if msg_type == "display_data":
            return _stored_output(
                {
                    "output_type": "display_data",
                    "data": content.get("data") or {},
                    "metadata": content.get("metadata") or {},
                }
            )
        if msg_type == "execute_result":
            return _stored_output(
                {
                    "output_type": "execute_result",
                    "execution_count": content.get("execution_count"),
                    "data": content.get("data") or {},
                    "metadata": content.get("metadata") or {},
                }
            )
        if msg_type == "error":
            return {
                "output_type": "error",
                "ename": content.get("ename", ""),
                "evalue": content.get("evalue", ""),
                "traceback": list(content.get("traceback") or ()),
            }
        return None  # status, comms and the like are not outputs
