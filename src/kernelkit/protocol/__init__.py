"""Sans-IO Jupyter messaging: messages, signing, framing and request tracking.

No sockets, no event loops, no files: frames in, messages out, and back.
"""

from kernelkit.protocol._message import PROTOCOL_VERSION, Header, Message, new_id, now_iso
from kernelkit.protocol._registration import (
    REGISTRATION_ACK,
    KernelRegistration,
    decode_registration,
    decode_registration_reply,
    encode_registration,
    encode_registration_reply,
)
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
    "REGISTRATION_ACK",
    "Header",
    "InputRequested",
    "KernelRegistration",
    "Message",
    "OutputReceived",
    "ReplyReceived",
    "RequestTracker",
    "Session",
    "StatusChanged",
    "TrackedRequest",
    "TrackerEvent",
    "Unmatched",
    "decode_registration",
    "decode_registration_reply",
    "encode_registration",
    "encode_registration_reply",
    "new_id",
    "now_iso",
]
