"""Lock-board errors. Each mixes in a builtin so generic handlers still work."""

from drivers.errors import DriverError


class LockboardError(DriverError):
    code = "lockboard_fault"
    message_zh = "储物柜控制板故障，请联系工作人员。"
    message_en = "The locker control board has a fault. Please contact staff."


class FrameError(LockboardError, ValueError):
    """Bytes on the wire that are not a valid reply (bad checksum, wrong address, garbage)."""

    code = "lockboard_bad_frame"


class BoardTimeout(LockboardError, TimeoutError):
    """No valid reply within the timeout, after all retries."""

    code = "lockboard_timeout"
    message_zh = "储物柜控制板无响应，请联系工作人员。"
    message_en = "The locker control board does not answer. Please contact staff."


class BoardOffline(LockboardError, ConnectionError):
    """The serial link itself is gone (adapter unplugged, pty closed)."""

    code = "lockboard_offline"
    message_zh = "储物柜控制板已断开，请联系工作人员。"
    message_en = "The locker control board is disconnected. Please contact staff."
