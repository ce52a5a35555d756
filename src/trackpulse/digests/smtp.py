"""A plain SMTP submission of a ready-made e-mail (starttls / ssl / none, optional AUTH): the
stop-gap `deliver_now` uses while the channels package has no e-mail module. One attempt;
the answer is an Outcome (4xx and connection trouble: retry; 5xx and refused AUTH: failed)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from trackpulse.config import ChannelConfig, EmailChannelConfig
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent


def submit(channel: ChannelConfig, message: EmailMessage) -> Outcome:
    assert isinstance(channel, EmailChannelConfig)
    where = f"channel {channel.name} (smtp {channel.smtp_host}:{channel.smtp_port})"
    try:
        if channel.smtp_security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(channel.smtp_host, channel.smtp_port,
                                                  timeout=channel.timeout_seconds,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=channel.timeout_seconds)
        with smtp:
            smtp.ehlo()
            if channel.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if channel.username and channel.password is not None:
                smtp.login(channel.username, channel.password.get_secret_value())
            smtp.send_message(message, from_addr=channel.sender, to_addrs=list(channel.to))
        return Sent(message["Message-ID"])
    except smtplib.SMTPAuthenticationError as exc:
        return Failed(f"{where}: authentication refused ({exc.smtp_code})", status=exc.smtp_code)
    except smtplib.SMTPResponseException as exc:
        answer = f"{where}: {exc.smtp_code} {exc.smtp_error.decode('utf-8', 'replace')}"
        return RetryAfter(60.0, answer) if 400 <= exc.smtp_code < 500 else Failed(answer, status=exc.smtp_code)
    except smtplib.SMTPRecipientsRefused as exc:
        return Failed(f"{where}: recipients refused: {', '.join(exc.recipients)}")
    except (OSError, smtplib.SMTPException) as exc:
        return RetryAfter(60.0, f"{where}: {type(exc).__name__}: {exc}")
