"""GPIO errors. Each mixes in a builtin so generic handlers still work."""

from drivers.errors import DriverError


class GpioError(DriverError):
    code = "gpio_fault"
    message_zh = "设备内部信号线路故障，请联系工作人员。"
    message_en = "An internal signal line of the device has a fault. Please contact staff."


class GpioChipNotFound(GpioError, FileNotFoundError):
    """No /dev/gpiochip* carries one of the configured labels (wrong board, or no access)."""

    code = "gpio_chip_not_found"


class GpioPermissionDenied(GpioError, PermissionError):
    """A gpiochip exists but this user may not open it (not in the ``gpio`` group)."""

    code = "gpio_permission_denied"


class GpioBackendMissing(GpioError, ImportError):
    """The lgpio library is not installed (a laptop, or a Pi without the ``pi`` extra)."""

    code = "gpio_backend_missing"


class GpioSetupError(GpioError, ValueError):
    """gpiozero refused a device: pin already in use, a fixed pull resistor, an unknown pin."""

    code = "gpio_setup_failed"


class GpioNotConfigured(GpioError, LookupError):
    """A device name asked for that the settings do not declare."""

    code = "gpio_not_configured"


class GpioClosed(GpioError, RuntimeError):
    """The board was closed; its outputs are in their safe states and stay there."""

    code = "gpio_closed"
