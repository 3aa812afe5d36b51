"""Root exception of the drivers package."""

from hallkiosk.errors import HallkioskError


class DriverError(HallkioskError):
    code = "hardware_fault"
    message_zh = "设备硬件故障，请联系工作人员。"
    message_en = "A hardware fault occurred. Please contact staff."
