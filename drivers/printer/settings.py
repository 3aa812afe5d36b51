"""Printer settings (``[kiosk.printer]`` once the kiosk wires it). Units are in the names."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from drivers.printer.profiles import PROFILES, PrinterProfile, get_profile
from hallkiosk.config import StrictModel

Backend = Literal["usb", "serial", "network", "sim"]
FlowControl = Literal["none", "rtscts", "xonxoff", "dsrdtr"]


class PrinterSettings(StrictModel):
    """One ticket printer: how to reach it, which model it is, and the paper policy."""

    backend: Backend = "sim"
    profile: Annotated[str, Field(min_length=1, max_length=40)] = "generic-80"
    # site-defined models, by name; a name here shadows a built-in profile
    custom_profiles: dict[str, PrinterProfile] = Field(default_factory=dict)

    # serial: any pyserial URL (device path, pty, loop://, spy://, socket://)
    url: Annotated[str, Field(min_length=1, max_length=300)] = "/dev/ttyUSB0"
    baud: Literal[9600, 19200, 38400, 57600, 115200] = 9600
    # thermal printers pace a long raster job with flow control; the cable decides which
    flow_control: FlowControl = "none"

    # network: raw TCP ("JetDirect"), usually port 9100
    host: Annotated[str, Field(max_length=253)] = ""
    port: Annotated[int, Field(ge=1, le=65535)] = 9100
    connect_timeout_ms: Annotated[int, Field(ge=100, le=30_000)] = 3_000

    # usb: ids from lsusb; endpoints from lsusb -v (the printer class defaults)
    usb_vendor_id: Annotated[int, Field(ge=0, le=0xFFFF)] = 0
    usb_product_id: Annotated[int, Field(ge=0, le=0xFFFF)] = 0
    usb_in_ep: Annotated[int, Field(ge=0x81, le=0x8F)] = 0x82
    usb_out_ep: Annotated[int, Field(ge=0x01, le=0x0F)] = 0x01

    # one DLE EOT query; the printer answers real-time queries within a few ms
    status_timeout_ms: Annotated[int, Field(ge=20, le=10_000)] = 500
    status_retries: Annotated[int, Field(ge=0, le=5)] = 1
    # a raster ticket at 9600 baud takes several seconds on the wire
    write_timeout_ms: Annotated[int, Field(ge=500, le=300_000)] = 30_000

    # paper policy: never start a ticket the printer cannot finish
    check_paper_before_print: bool = True
    near_end: Literal["warn", "refuse"] = "warn"
    # ask again after the job: paper that ran out mid-ticket voids the ticket
    verify_after_print: bool = True

    @model_validator(mode="after")
    def _check_backend(self) -> Self:
        if self.profile not in self.custom_profiles and self.profile not in PROFILES:
            known = ", ".join(sorted({*PROFILES, *self.custom_profiles}))
            raise ValueError(f"profile {self.profile!r} is not known (known: {known})")
        for key, profile in self.custom_profiles.items():
            if key != profile.name:
                raise ValueError(f"custom_profiles.{key}: name must be {key!r}")
        if self.backend == "network" and not self.host:
            raise ValueError("backend 'network' needs host")
        if self.backend == "usb" and not (self.usb_vendor_id and self.usb_product_id):
            raise ValueError("backend 'usb' needs usb_vendor_id and usb_product_id")
        return self

    def resolved_profile(self) -> PrinterProfile:
        return get_profile(self.profile, self.custom_profiles)
