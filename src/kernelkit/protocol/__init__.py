"""Sans-IO Jupyter messaging: messages, signing, framing and request tracking.

No sockets, no event loops, no files: frames in, messages out, and back.
"""

from kernelkit.protocol._message import PROTOCOL_VERSION, Header, Message, new_id, now_iso

__all__ = [
    "PROTOCOL_VERSION",
    "Header",
    "Message",
    "new_id",
    "now_iso",
]
