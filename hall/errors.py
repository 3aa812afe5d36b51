"""Errors of the hall service. Those raised while answering a request become the response's
``error`` (code plus both languages) and are shown to the applicant as they are."""

from __future__ import annotations

from hallkiosk.errors import HallkioskError


class HallError(HallkioskError):
    code = "hall_error"
    message_zh = "服务暂时不可用，请稍后再试或联系工作人员。"
    message_en = "The service is not available right now. Please try again or contact staff."


class RequestInvalid(HallError, ValueError):
    code = "request_invalid"
    message_zh = "请求内容有误，请重新操作。"
    message_en = "The request was not valid. Please start again."


class UnknownCategory(HallError, LookupError):
    code = "unknown_category"
    message_zh = "没有该业务，请重新选择。"
    message_en = "This service does not exist. Please choose again."


class QuotaExhausted(HallError):
    code = "quota_exhausted"
    message_zh = "今日该业务号源已发完，请改日办理或预约。"
    message_en = "No more tickets for this service today. Please come another day or book online."


class QuotaWindowClosed(HallError):
    code = "quota_window_closed"
    message_zh = "当前时段不发放该业务号，请留意取号时间。"
    message_en = "Tickets for this service are not given out at this time."


class TicketNotFound(HallError, LookupError):
    code = "ticket_not_found"
    message_zh = "没有找到该号码。"
    message_en = "The ticket was not found."


class NothingWaiting(HallError, LookupError):
    code = "nothing_waiting"
    message_zh = "当前没有等候的号码。"
    message_en = "Nobody is waiting."


class AppointmentNotFound(HallError, LookupError):
    code = "appointment_not_found"
    message_zh = "没有找到您今天的预约，请核对后重试，或直接取号。"
    message_en = "No booking for today was found. Please check, or take a normal ticket."


class AppointmentTooEarly(HallError):
    code = "appointment_too_early"
    message_zh = "预约时间未到，请在预约时间前30分钟内签到。"
    message_en = "It is too early to check in. Please check in within 30 minutes of your time."


class AppointmentForfeited(HallError):
    code = "appointment_forfeited"
    message_zh = "已超过预约时间1小时，预约视为放弃，请取普通号办理。"
    message_en = (
        "You are over an hour late, so the booking has lapsed. Please take a normal ticket."
    )


class UploadError(HallError, ValueError):
    code = "upload_invalid"
    message_zh = "材料上传出错，请重试。"
    message_en = "The upload failed. Please try again."


class SubmissionNotFound(HallError, LookupError):
    code = "submission_not_found"
    message_zh = "没有找到该预审申请。"
    message_en = "The pre-review submission was not found."


class DeviceUnknown(HallError, LookupError):
    code = "device_unknown"
    message_zh = "未知设备。"
    message_en = "Unknown device."
