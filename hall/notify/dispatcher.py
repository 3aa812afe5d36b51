"""Sends what the queue holds: due messages one at a time, with retries and alarms.

For each due message: lease it (commit), open the sealed password in memory if it has one,
render, send outside any transaction, then record the outcome (commit):

- delivered: ``sent`` with the provider id and ``sent_at``; the sealed password is dropped;
- transient failure: ``attempts`` + 1 and ``next_attempt_at`` = now + backoff, where the
  n-th failure waits min(initial * 2**(n-1), max) times a random factor in [1-j, 1+j];
- permanent failure, or the last allowed attempt failed: ``failed`` and
  ``on_alarm("notification_failed", {id, kind, phone_masked, reason})``.

At-least-once: if the process dies after the gateway took the SMS but before ``sent`` is
committed, the lease runs out (``claim_lease_s``) and the SMS is sent again, with the same
``out_id``. A message is never lost; it may rarely arrive twice.

The password exists only in this process's memory, between unsealing and the end of the send.
Every reason that is logged, stored or alarmed is built from codes and statuses and then
scrubbed of the password, in case a sender or gateway ever echoes it.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta

from hall.notify import queue
from hall.notify.errors import PermanentSendError, SendError, TemplateError, TransientSendError
from hall.notify.message import OutgoingMessage, mask_phone
from hall.notify.queue import ClaimedMessage, QueueStats
from hall.notify.senders import NotificationSender
from hall.notify.settings import NotifySettings, RetrySettings
from hall.notify.templates import (
    PASSWORD_DIGITS,
    PASSWORD_PARAM,
    gateway_params,
    render,
    template_for,
)
from hallkiosk.clock import Clock

log = logging.getLogger("hall.notify")

ALARM_FAILED = "notification_failed"
MAX_REASON_CHARS = 300
Unseal = Callable[[bytes], str]
OnAlarm = Callable[[str, dict[str, object]], None]


def backoff_s(failures: int, retry: RetrySettings, rng: random.Random) -> float:
    """Delay after the ``failures``-th failed attempt (1 for the first)."""
    base = min(retry.backoff_initial_s * 2 ** max(failures - 1, 0), retry.backoff_max_s)
    j = retry.jitter_fraction
    return float(base * (1 + rng.uniform(-j, j)))


class NotificationDispatcher:
    """``connect`` must return a new connection to the queue's database each call; the
    dispatcher owns and closes it (so ``run_once`` works from any thread)."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        sender: NotificationSender,
        clock: Clock,
        settings: NotifySettings,
        *,
        unseal: Unseal | None = None,
        on_alarm: OnAlarm | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._connect = connect
        self._sender = sender
        self._clock = clock
        self._settings = settings
        self._unseal = unseal
        self._on_alarm = on_alarm
        self._rng = rng if rng is not None else random.Random()
        self._run_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ------------------------------------------------------------------------

    def run_once(self) -> int:
        """Attempt every due message (at most ``batch_size``); return how many were attempted."""
        with self._run_lock, closing(self._connect()) as conn:
            done = 0
            while done < self._settings.batch_size and not self._stopping.is_set():
                row = queue.claim_next(
                    conn, now=self._clock.now(), lease_s=self._settings.claim_lease_s
                )
                if row is None:
                    break
                self._attempt(conn, row)
                done += 1
            return done

    def _attempt(self, conn: sqlite3.Connection, row: ClaimedMessage) -> None:
        retry = self._settings.retry
        masked = mask_phone(row.phone)
        if row.attempts > retry.max_attempts:
            # only a lease that ran out gets here: the last attempt's outcome is unknown
            self._fail(conn, row, f"gave up after {retry.max_attempts} attempts (last unknown)")
            return
        secret: str | None = None
        try:
            secret = self._open_secret(row)
            msg = self._build(row, secret)
            provider_id = self._sender.send(msg)
        except TransientSendError as exc:
            reason = _scrub(exc.detail, secret)
            if row.attempts >= retry.max_attempts:
                self._fail(conn, row, f"gave up after {row.attempts} attempts: {reason}")
                return
            delay = backoff_s(row.attempts, retry, self._rng)
            queue.mark_retry(
                conn,
                row.id,
                next_attempt_at=self._clock.now() + timedelta(seconds=delay),
                reason=reason,
            )
            log.info(
                "notification %d (%s) to %s: attempt %d failed (%s), retry in %.0f s",
                row.id,
                row.kind,
                masked,
                row.attempts,
                reason,
                delay,
            )
            return
        except (PermanentSendError, TemplateError) as exc:
            self._fail(conn, row, _scrub(exc.detail, secret))
            return
        except Exception as exc:
            # a bug in a sender: keep the loop alive, name only the type (its text could
            # carry anything), and let the retry limit turn a persistent bug into an alarm
            reason = f"unexpected {type(exc).__name__} in the sender"
            log.error("notification %d (%s) to %s: %s", row.id, row.kind, masked, reason)
            if row.attempts >= retry.max_attempts:
                self._fail(conn, row, f"gave up after {row.attempts} attempts: {reason}")
            else:
                delay = backoff_s(row.attempts, retry, self._rng)
                when = self._clock.now() + timedelta(seconds=delay)
                queue.mark_retry(conn, row.id, next_attempt_at=when, reason=reason)
            return
        provider_id = _scrub(provider_id, secret)[:128]
        queue.mark_sent(conn, row.id, provider_id=provider_id, now=self._clock.now())
        log.info(
            "notification %d (%s) to %s sent on attempt %d, provider id %s",
            row.id,
            row.kind,
            masked,
            row.attempts,
            provider_id,
        )

    def _open_secret(self, row: ClaimedMessage) -> str | None:
        needs = template_for(row.kind).needs_secret
        if row.sealed_secret is None:
            if needs:
                raise PermanentSendError("the sealed password is missing")
            return None
        if self._unseal is None:
            raise PermanentSendError("a sealed password is queued but no unseal key is set up")
        try:
            secret = self._unseal(row.sealed_secret)
        except Exception:
            # the exception text is not ours to trust; the type is enough to diagnose
            raise PermanentSendError("the sealed password could not be opened") from None
        if not (
            isinstance(secret, str)
            and len(secret) == PASSWORD_DIGITS
            and secret.isascii()
            and secret.isdigit()
        ):
            raise PermanentSendError(f"the unsealed password is not {PASSWORD_DIGITS} digits")
        return secret

    def _build(self, row: ClaimedMessage, secret: str | None) -> OutgoingMessage:
        params: dict[str, object] = dict(row.params)
        if secret is not None:
            params[PASSWORD_PARAM] = secret
        s = self._settings
        text = render(row.kind, params, lang=row.lang, max_chars=s.text_budget_chars)
        template_id = s.http_sms.template_ids.get(row.kind) if s.backend == "http_sms" else None
        return OutgoingMessage(
            id=row.id,
            out_id=row.out_id,
            kind=row.kind,
            phone=row.phone,
            text=text,
            lang=row.lang,
            template_id=template_id,
            template_params=gateway_params(row.kind, params, lang=row.lang) if template_id else {},
        )

    def _fail(self, conn: sqlite3.Connection, row: ClaimedMessage, reason: str) -> None:
        reason = reason[:MAX_REASON_CHARS]
        masked = mask_phone(row.phone)
        queue.mark_failed(conn, row.id, reason=reason, now=self._clock.now())
        log.warning("notification %d (%s) to %s failed: %s", row.id, row.kind, masked, reason)
        if self._on_alarm is None:
            return
        payload: dict[str, object] = {
            "id": row.id,
            "kind": row.kind,
            "phone_masked": masked,
            "reason": reason,
        }
        try:
            self._on_alarm(ALARM_FAILED, payload)
        except Exception:
            log.exception("the notification alarm callback failed")

    # -- reporting -----------------------------------------------------------------------

    def stats(self) -> QueueStats:
        with closing(self._connect()) as conn:
            return queue.stats(conn)

    # -- background loop -----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="hall-notify", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for due messages now (after an enqueue) instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the message in hand, then stop. Safe to call twice."""
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("the notification dispatcher did not stop within %.0f s", timeout_s)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except (sqlite3.Error, SendError, OSError) as exc:
                log.error("notification pass failed: %s: %s", type(exc).__name__, exc)
            except Exception:
                log.exception("notification pass failed")
            self._wake.wait(self._settings.poll_interval_s)


def _scrub(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "*" * len(secret))
    return text
