"""Sans-IO Jupyter messaging: messages, signing, framing and request tracking.

No sockets, no event loops, no files: frames in, messages out, and back.
"""

from kernelkit.protocol._message import PROTOCOL_VERSION, Header, Message, new_id, now_iso
from kernelkit.protocol._session import DELIMITER, Session
from kernelkit.protocol._tracker import (
    InputRequested,
    OutputReceived,
    ReplyReceived,
    RequestTracker,
    StatusChanged,
    TrackedRequest,
    TrackerEvent,
    Unmatched,
)

__all__ = [
    "DELIMITER",
    "PROTOCOL_VERSION",
    "Header",
    "InputRequested",
    "Message",
    "OutputReceived",
    "ReplyReceived",
    "RequestTracker",
    "Session",
    "StatusChanged",
    "TrackedRequest",
    "TrackerEvent",
    "Unmatched",
    "new_id",
    "now_iso",
]
