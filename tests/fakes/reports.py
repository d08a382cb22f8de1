"""Reports as mailbox providers send them, delivered to our listener over SMTP.

Fixtures follow their sources: the DSN layout of RFC 3464 section 6 (example 1,
a Postfix-style ``failed`` with 5.1.1; ``delivered`` and ``delayed`` alike) and the
ARF layout of RFC 5965 appendix B (an ``abuse`` report quoting the original
message, as Yahoo's and Microsoft's feedback loops send them); an out-of-office
reply as Exchange writes it (``Auto-Submitted: auto-replied``).
"""

from __future__ import annotations

import aiosmtplib


def dsn(
    *, recipient: str, action: str, status: str, envelope_id: str, original_headers: str = ""
) -> bytes:
    diagnostic = {
        "failed": f"smtp; 550 {status} The email account that you tried to reach does not exist",
        "delayed": f"smtp; 451 {status} Try again later",
        "delivered": "smtp; 250 2.0.0 OK",
        "relayed": "smtp; 250 2.0.0 relayed to a server that does not offer DSN",
    }[action]
    return f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: undisclosed
Subject: Delivery Status Notification
MIME-Version: 1.0
Auto-Submitted: auto-replied
Content-Type: multipart/report; report-type=delivery-status; boundary="DSN-BOUNDARY"

--DSN-BOUNDARY
Content-Type: text/plain

This is the mail system at host mx.example.net.

--DSN-BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Original-Envelope-Id: {envelope_id}

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: {diagnostic}

--DSN-BOUNDARY
Content-Type: text/rfc822-headers

{original_headers or "Subject: Hi"}

--DSN-BOUNDARY--
""".replace("\n", "\r\n").encode()


def arf(*, original: bytes, recipient: str) -> bytes:
    return (
        f"""From: Feedback Loop <staff@hotmail.example>
To: fbl
Subject: complaint about message
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF-BOUNDARY"

--ARF-BOUNDARY
Content-Type: text/plain

This is an email abuse report for an email message received from IP 192.0.2.1.

--ARF-BOUNDARY
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Rcpt-To: {recipient}

--ARF-BOUNDARY
Content-Type: message/rfc822
Content-Disposition: inline

""".replace("\n", "\r\n").encode()
        + original
        + b"\r\n--ARF-BOUNDARY--\r\n"
    )


def out_of_office(*, to: str) -> bytes:
    return f"""From: bob@example.org
To: {to}
Subject: Automatic reply: Hi
Auto-Submitted: auto-replied

I am out of the office until Monday.
""".replace("\n", "\r\n").encode()


async def deliver(port: int, rcpt: str, data: bytes) -> None:
    """Hand a report to the listener as a remote MTA would (null sender)."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as smtp:
        await smtp.sendmail("", [rcpt], data)
