"""Sans-IO Jupyter messaging: messages, signing, framing and request tracking.

No sockets, no event loops, no files: frames in, messages out, and back.
"""

from kernelkit.protocol._message import PROTOCOL_VERSION, Header, Message, new_id, now_iso
from kernelkit.protocol._msgtypes import (
    CHANNEL_NAMES,
    COMM_MESSAGES,
    CONTROL_REQUESTS,
    IOPUB_MESSAGES,
    SHELL_REQUESTS,
    STDIN_MESSAGES,
    Channel,
    is_reply,
    is_request,
    reply_type,
    request_channel,
    request_type,
)
from kernelkit.protocol._registration import (
    REGISTRATION_ACK,
    KernelRegistration,
    decode_registration,
    decode_registration_reply,
    encode_registration,
    encode_registration_reply,
)
from kernelkit.protocol._session import DELIMITER, Session, signature_scheme_problem
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
from kernelkit.protocol._websocket import (
    WS_V1_SUBPROTOCOL,
    decode_ws_legacy,
    decode_ws_v1,
    encode_ws_legacy,
    encode_ws_v1,
)

__all__ = [
    "CHANNEL_NAMES",
    "COMM_MESSAGES",
    "CONTROL_REQUESTS",
    "DELIMITER",
    "IOPUB_MESSAGES",
    "PROTOCOL_VERSION",
    "REGISTRATION_ACK",
    "SHELL_REQUESTS",
    "STDIN_MESSAGES",
    "WS_V1_SUBPROTOCOL",
    "Channel",
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
    "signature_scheme_problem",
    "decode_registration",
    "decode_registration_reply",
    "decode_ws_legacy",
    "decode_ws_v1",
    "encode_registration",
    "encode_registration_reply",
    "encode_ws_legacy",
    "encode_ws_v1",
    "is_reply",
    "is_request",
    "new_id",
    "now_iso",
    "reply_type",
    "request_channel",
    "request_type",
]
