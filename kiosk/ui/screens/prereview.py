"""Online pre-review (网上预审): one page per ``PreReviewFlow`` state.

    LOADING        the matters are being fetched (the busy box says so)
    UNAVAILABLE    pre-review cannot be done here now
    CHOOSE_MATTER  the matters, a page at a time
    GUIDE          收件清单 (required items marked) and 办事指南, scrolling when long
    CAPTURE        which item, a picture of the camera plate, "Take picture"
    PREVIEW        the picture just taken, "Take again" / "Use this picture"
    PHONE          the mobile number on a keypad
    IDENTIFY       put the ID card on the reader
    CONFIRM        what will be sent: matter, items, phone (masked), name (masked)
    DONE           the receipt number, printed on the receipt
    PRINT_FAILED   submitted, but the receipt did not print: the number to write down
    QUEUED         saved on the kiosk; the number comes by SMS

The preview is the flow's JPEG decoded into a texture here (a copy scaled to the screen); it
goes with the page when the flow moves on or is wiped.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

from kivy.graphics.texture import Texture
from kivy.uix.image import Image
from kivy.uix.widget import Widget
from PIL import Image as PilImage

from drivers.camera import Photo
from kiosk.flows.base import Bilingual, Msg, Text
from kiosk.flows.home import JourneyKind
from kiosk.flows.prereview import ItemShown, PreReviewFlow, PreReviewState, PreReviewView
from kiosk.services.hall_gateway import ChecklistItem, Matter
from kiosk.ui.context import UiContext
from kiosk.ui.screens.common_b import (
    BACK,
    CANCEL,
    FINISH,
    Banner,
    CardHint,
    DocumentHint,
    PageScreen,
    Row,
    StatusMark,
    act,
)
from kiosk.ui.shell import ScreenFactory
from kiosk.ui.widgets import Keypad, TextLabel, Tile, TilePage, plain
from kiosk.ui.widgets.tiles import Paging

S = PreReviewState

PREVIEW_MAX_PX = 1024  # the preview texture's longer side: the screen is 1080 wide
REQUIRED = Msg("Required")
OPTIONAL = Msg("Optional")


def photo_texture(photo: Photo, max_px: int = PREVIEW_MAX_PX) -> Texture:
    """The JPEG as a texture no bigger than ``max_px`` a side (JPEG draft decoding keeps a
    camera's full-size picture quick on a Pi)."""
    with PilImage.open(io.BytesIO(photo.jpeg)) as image:
        image.draft("RGB", (max_px, max_px))
        rgba = image.convert("RGBA")
    rgba.thumbnail((max_px, max_px))
    texture = Texture.create(size=rgba.size, colorfmt="rgba")
    texture.blit_buffer(rgba.tobytes(), colorfmt="rgba", bufferfmt="ubyte")
    texture.flip_vertical()  # PIL rows run top down, GL's bottom up
    return texture


def _name(item: ChecklistItem) -> Bilingual:
    return Bilingual(item.name_zh, item.name_en)


def _matter(matter: Matter) -> Bilingual:
    return Bilingual(matter.name_zh, matter.name_en)


class PreReviewScreen(PageScreen[PreReviewFlow]):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.keypad: Keypad | None = None
        self.preview_image: Image | None = None
        self.upload_line: TextLabel | None = None
        self._texture: tuple[Photo, Texture] | None = None

    def forget(self) -> None:
        self.keypad = None
        self.preview_image = None
        self.upload_line = None

    def detach(self) -> None:
        super().detach()
        self._texture = None  # the picture goes with the journey

    # -- PageScreen ------------------------------------------------------------------------------

    def signature(self, flow: PreReviewFlow) -> object:
        view = flow.view
        # the keypad's entry changes without a new page; the upload's progress does too
        return replace(view, phone_entry="", upload=None)

    def update(self, flow: PreReviewFlow) -> None:
        view = flow.view
        if self.keypad is not None:
            self.keypad.show(view.phone_entry, can_confirm=flow.keypad.complete)
        if self.upload_line is not None:
            upload = view.upload
            self.upload_line.set_source(
                None
                if upload is None
                else Msg.of(
                    "Sending file {file} of {files}…",
                    file=upload.file_index + 1,
                    files=upload.files_total,
                )
            )

    def build(self, flow: PreReviewFlow) -> None:
        pages = {
            S.LOADING: self._loading,
            S.UNAVAILABLE: self._unavailable,
            S.CHOOSE_MATTER: self._choose_matter,
            S.GUIDE: self._guide,
            S.CAPTURE: self._capture,
            S.PREVIEW: self._preview,
            S.PHONE: self._phone,
            S.IDENTIFY: self._identify,
            S.CONFIRM: self._confirm,
            S.DONE: self._done,
            S.PRINT_FAILED: self._print_failed,
            S.QUEUED: self._queued,
        }
        page = pages.get(flow.state)
        if page is not None:
            page(flow, flow.view)

    # -- the matter ------------------------------------------------------------------------------

    def _loading(self, _flow: PreReviewFlow, _view: PreReviewView) -> None:
        self.page(self.title(Msg("Online pre-review")))

    def _unavailable(self, flow: PreReviewFlow, _view: PreReviewView) -> None:
        self.page(
            StatusMark(self.ctx, "attention"),
            self.title(Msg("Pre-review is not available right now")),
            self.line(
                self.reason(flow, S.UNAVAILABLE.value)
                or Msg("Please try again later, or ask at the service desk.")
            ),
            bottom=[self.actions(self.button(FINISH, act(flow.finish)))],
            centre=True,
        )

    def _choose_matter(self, flow: PreReviewFlow, view: PreReviewView) -> None:
        tiles = TilePage(self.ctx)
        tiles.show(
            [
                Tile(
                    _matter(m),
                    act(flow.choose_matter, m.code),
                    note=Msg.of("{count} documents", count=len(m.items)),
                )
                for m in view.matters
            ],
            Paging(view.page, view.page_count, act(flow.prev_page), act(flow.next_page)),
        )
        self.page(
            self.title(flow.prompt),
            fill=tiles,
            bottom=[self.actions(self.small_button(CANCEL, act(flow.cancel)))],
        )

    def _guide(self, flow: PreReviewFlow, view: PreReviewView) -> None:
        matter = view.matter
        if matter is None:
            return
        checklist: list[Widget | None] = [
            self.line(Msg("Materials to submit (收件清单)"), halign="left", bold=True),
            *(self._item_row(shown) for shown in view.items),
            self.line(Msg("Guide (办事指南)"), halign="left", bold=True),
            self.line(Bilingual(matter.guide_zh, matter.guide_en), halign="left"),
        ]
        self.page(
            self.title(_matter(matter)),
            self.line(flow.prompt, colour="text_muted"),
            fill=self.scrolled(checklist),
            bottom=[
                self.actions(
                    self.button(Msg("Start taking pictures"), act(flow.start_capture)),
                    columns=1,
                ),
                self.actions(
                    self.small_button(BACK, act(flow.back)),
                    self.small_button(CANCEL, act(flow.cancel)),
                ),
            ],
        )

    def _item_row(self, shown: ItemShown) -> Row:
        required = shown.item.required
        mark = Banner(
            self.ctx,
            REQUIRED if required else OPTIONAL,
            "danger" if required else "secondary",
            role="small",
            fit_width=True,
        )
        return self.row([self.line(_name(shown.item), halign="left"), mark])

    # -- capturing -------------------------------------------------------------------------------

    def _capture(self, flow: PreReviewFlow, view: PreReviewView) -> None:
        item = view.current
        if item is None:
            return
        back = self.small_button(BACK, act(flow.back))
        self.page(
            self.line(_step(view, item), colour="text_muted"),
            self.title(_name(item)),
            self.line(REQUIRED if item.required else OPTIONAL, colour="text_muted"),
            self.line(flow.prompt),
            fill=DocumentHint(self.ctx),
            bottom=[
                self.actions(self.button(Msg("Take picture"), act(flow.snap)), columns=1),
                self.actions(
                    self.small_button(Msg("Skip this item"), act(flow.skip))
                    if view.can_skip
                    else None,
                    back,
                    self.small_button(CANCEL, act(flow.cancel)),
                    columns=3,
                ),
            ],
        )

    def _preview(self, flow: PreReviewFlow, view: PreReviewView) -> None:
        item = view.current
        photo = view.preview
        if item is None or photo is None:
            return
        if self._texture is None or self._texture[0] is not photo:
            self._texture = (photo, photo_texture(photo))
        self.preview_image = Image(texture=self._texture[1], fit_mode="contain")
        self.page(
            self.title(flow.prompt),
            self.line(_name(item), colour="text_muted"),
            fill=self.preview_image,
            bottom=[
                self.actions(
                    self.button(Msg("Take again"), act(flow.retake), "secondary"),
                    self.button(Msg("Use this picture"), act(flow.accept)),
                )
            ],
        )

    # -- phone and card --------------------------------------------------------------------------

    def _phone(self, flow: PreReviewFlow, _view: PreReviewView) -> None:
        self.keypad = Keypad(self.ctx, act(flow.press), act(flow.delete), act(flow.confirm_phone))
        self.page(
            self.title(flow.prompt),
            self.line(Msg("The result will be sent to this number by SMS."), colour="text_muted"),
            self.keypad,
            bottom=[self.actions(self.small_button(CANCEL, act(flow.cancel)))],
        )

    def _identify(self, flow: PreReviewFlow, _view: PreReviewView) -> None:
        self.page(
            self.title(flow.prompt),
            self.line(Msg("An ID card or a citizen card can be used.")),
            fill=CardHint(self.ctx),
            bottom=[self.actions(self.small_button(CANCEL, act(flow.cancel)))],
        )

    def _confirm(self, flow: PreReviewFlow, view: PreReviewView) -> None:
        matter = view.matter
        if matter is None:
            return
        rows: list[Widget | None] = [
            self.line(Msg("Matter"), colour="text_muted", halign="left"),
            self.line(_matter(matter), halign="left"),
            self.line(Msg("Materials"), colour="text_muted", halign="left"),
        ]
        for shown in view.items:
            rows.append(
                self.row(
                    [
                        self.line(
                            Msg.of(
                                "{item}: {status}", item=_name(shown.item), status=_status(shown)
                            ),
                            halign="left",
                        ),
                        self.small_button(Msg("Retake"), act(flow.recapture, shown.item.id)),
                    ],
                    widths=(0.65, 0.35),
                )
            )
        rows += [
            self.line(Msg("Mobile phone"), colour="text_muted", halign="left"),
            self.row(
                [
                    self.line(plain(view.phone_masked or ""), halign="left"),
                    self.small_button(Msg("Change"), act(flow.edit_phone)),
                ],
                widths=(0.65, 0.35),
            ),
        ]
        if view.name_masked:
            rows += [
                self.line(Msg("Applicant"), colour="text_muted", halign="left"),
                self.line(plain(view.name_masked), halign="left"),
            ]
        self.upload_line = self.line(None, colour="text_muted")  # the upload's progress
        self.page(
            self.title(flow.prompt),
            self.upload_line,
            fill=self.scrolled(rows),
            bottom=[
                self.actions(self.button(Msg("Submit"), act(flow.submit)), columns=1),
                self.actions(self.small_button(CANCEL, act(flow.cancel))),
            ],
        )

    # -- the end ---------------------------------------------------------------------------------

    def _receipt_number(self, view: PreReviewView) -> list[Widget | None]:
        receipt = view.receipt
        if receipt is None or receipt.receipt_no is None:
            return []
        return [
            self.line(Msg("Receipt number"), colour="text_muted"),
            self.hero(receipt.receipt_no),
        ]

    def _done(self, flow: PreReviewFlow, view: PreReviewView) -> None:
        self.page(
            StatusMark(self.ctx, "done"),
            self.title(flow.prompt),
            *self._receipt_number(view),
            self.line(
                Msg("The department will reply within one working day. You will get an SMS.")
            ),
            self.line(
                Msg("Scan the receipt's QR code at a kiosk to see how it is going."),
                colour="text_muted",
            ),
            bottom=[self.actions(self.button(FINISH, act(flow.finish)))],
            centre=True,
        )

    def _print_failed(self, flow: PreReviewFlow, view: PreReviewView) -> None:
        reason = self.reason(flow, S.PRINT_FAILED.value)
        self.page(
            StatusMark(self.ctx, "attention"),
            self.title(Msg("Submitted, but the receipt could not be printed")),
            *self._receipt_number(view),
            self.line(Msg("Please write the number down, or try printing again.")),
            self.banner(reason) if reason is not None else None,
            bottom=[
                self.actions(
                    self.button(Msg("Print again"), act(flow.print_again)),
                    self.button(FINISH, act(flow.finish), "secondary"),
                )
            ],
            centre=True,
        )

    def _queued(self, flow: PreReviewFlow, _view: PreReviewView) -> None:
        self.page(
            StatusMark(self.ctx, "done"),
            self.title(Msg("Your materials are saved")),
            self.line(self.reason(flow, S.QUEUED.value) or _QUEUED_HELP),
            bottom=[self.actions(self.button(FINISH, act(flow.finish)))],
            centre=True,
        )


_QUEUED_HELP = Msg("The receipt number will come to you by SMS.")


def _step(view: PreReviewView, item: ChecklistItem) -> Text:
    index = next((n for n, s in enumerate(view.items) if s.item.id == item.id), 0)
    return Msg.of("Item {number} of {total}", number=index + 1, total=len(view.items))


def _status(shown: ItemShown) -> Text:
    if shown.captured:
        return Msg("taken")
    if shown.skipped:
        return Msg("skipped")
    return Msg("missing")


SCREENS: dict[str, ScreenFactory] = {JourneyKind.PREREVIEW.value: PreReviewScreen}

__all__ = ["SCREENS", "PreReviewScreen", "photo_texture"]
