"""Locker errors: each has a stable code and plain Chinese and English words for the screen."""

from __future__ import annotations

from datetime import datetime

from hallkiosk.errors import HallkioskError


class LockerError(HallkioskError):
    code = "locker_error"
    message_zh = "储物柜暂时无法使用，请联系工作人员。"
    message_en = "The locker cannot be used right now. Please contact staff."


class InvalidRequest(LockerError, ValueError):
    code = "invalid_request"
    message_zh = "请求无效。"
    message_en = "The request is not valid."


class NotPermitted(LockerError, PermissionError):
    code = "not_permitted"
    message_zh = "无权执行此操作。"
    message_en = "You are not allowed to do this."


class NoSuchDeposit(LockerError, LookupError):
    code = "no_such_deposit"
    message_zh = "没有找到您的待取件。"
    message_en = "No item is waiting for you."


class NoSuchBay(LockerError, LookupError):
    code = "no_such_bay"
    message_zh = "没有这个柜格。"
    message_en = "There is no such bay."


class NoFreeBay(LockerError, LookupError):
    code = "no_free_bay"
    message_zh = "没有合适的空柜格。"
    message_en = "No free bay of that size."


class WrongState(LockerError, RuntimeError):
    code = "wrong_state"
    message_zh = "该件当前状态不允许此操作。"
    message_en = "This item cannot be handled that way now."


class WrongPassword(LockerError, ValueError):
    code = "wrong_password"

    def __init__(self, attempts_left: int) -> None:
        self.attempts_left = attempts_left
        super().__init__(
            f"wrong password, {attempts_left} attempts left",
            message_zh=f"取件密码错误，还可以尝试 {attempts_left} 次。",
            message_en=f"Wrong pickup password. {attempts_left} tries left.",
        )


class LockedOut(LockerError, PermissionError):
    code = "locked_out"

    def __init__(self, until: datetime) -> None:
        self.until = until
        hhmm = until.strftime("%H:%M")
        super().__init__(
            f"locked after too many wrong passwords until {until.isoformat()}",
            message_zh=f"密码错误次数过多，已锁定至 {hhmm}。可联系工作人员或申请重新发送取件码。",
            message_en=(
                f"Too many wrong passwords. Locked until {hhmm}. "
                "Ask staff for help or request a new code."
            ),
        )


class DoorJammed(LockerError, RuntimeError):
    code = "door_jammed"
    message_zh = "柜门未能打开，已通知工作人员。您的物品仍在柜内，请联系工作人员。"
    message_en = "The door did not open. Staff have been alerted; your item is still safe inside."


class BayFault(LockerError, RuntimeError):
    """The lock board did not answer or the link is down; nothing was opened for certain."""

    code = "bay_fault"
    message_zh = "柜门控制故障，未能开门，已通知工作人员。"
    message_en = "The locker could not open the door. Staff have been alerted."


class DoorNotClosed(LockerError, RuntimeError):
    code = "door_not_closed"
    message_zh = "请先关好柜门。"
    message_en = "Please close the door first."
