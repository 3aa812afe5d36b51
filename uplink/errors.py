"""Root exception of the uplink package."""

from hallkiosk.errors import HallkioskError


class UplinkError(HallkioskError):
    code = "uplink_error"
    message_zh = "与大厅的通信出现问题，已记录，稍后自动重试。"
    message_en = "Communication with the hall failed. It is recorded and will be retried."
