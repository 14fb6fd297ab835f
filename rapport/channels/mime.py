"""A message's bytes for SMTP, written directly rather than through the `email`
package's object model and generator.

Every email of a broadcast has the same shape (headers, a text part, an HTML part), so
the generic machinery (a tree of message objects, header folding by policy, a generator
walking it) cost more than everything else of a send (about 1 ms of the 3.5 ms a send
took). Here each message is a few joins: headers that are plain ASCII are written as
they are, others as RFC 2047 encoded words (`email.header.Header`, still folded), and
both bodies are UTF-8 in quoted-printable (`binascii`, in C), so no line is longer than
76 characters whatever the template. The boundary begins with "=_", which
quoted-printable never produces, so no body can contain it.

The result is what `email.message_from_bytes` reads back to the same headers and
bodies as Django's `EmailMultiAlternatives` would send (tests/channels/test_mime.py).
"""

import binascii
import email.utils
import re
from email.header import Header

_ASCII_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_LINE_BREAK = re.compile(r"[\r\n]")
_BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
# RFC 5322 lines should be at most 78 characters; a header longer than this is folded.
_LONGEST_PLAIN_HEADER = 70


class HeaderError(ValueError):
    """A header value with a line break in it: it would inject headers of its own."""


def _header_value(name: str, value: str) -> str:
    if _LINE_BREAK.search(value):
        raise HeaderError(f"the {name} header has a line break in it")
    if _ASCII_PRINTABLE.fullmatch(value):
        if len(name) + len(value) <= _LONGEST_PLAIN_HEADER or " " not in value:
            # Short, or nowhere to fold (a URL): as it is (the limit is 998).
            return value
        # Folded at spaces, not encoded: a URL (List-Unsubscribe) stays a URL.
        return Header(value, "us-ascii", header_name=name).encode(linesep="\r\n")
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def address_header(name: str, address: str) -> str:
    """`Name <address>` (or the address alone) as a header value: the name encoded if
    it needs to be, the address itself plain ASCII (callers check)."""
    if _LINE_BREAK.search(address):
        raise HeaderError(f"the {name} header has a line break in it")
    if _BARE_ADDRESS.fullmatch(address):
        return address  # the common case, a customer's address: nothing to parse
    display, bare = email.utils.parseaddr(address)
    return email.utils.formataddr((display, bare), charset="utf-8") if display else bare


def _body(text: str) -> bytes:
    # Line ends as CRLF first, so that quoted-printable keeps them as line ends.
    data = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    # binascii ends its soft line breaks as the text's first line ends: CRLF, or, in a
    # text of one line (HTML often is), a bare LF, which SMTP does not allow.
    return encoded if b"\r\n" in data else encoded.replace(b"\n", b"\r\n")


def _part(content_type: str, text: str) -> bytes:
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + _body(text)


def message_bytes(
    *,
    boundary_key: str,
    from_header: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    headers: dict[str, str],
    date: str,
) -> bytes:
    """The message, CRLF line ends, ready for DATA (before dot-stuffing).

    `boundary_key`: unique per message (its id), to make the MIME boundary.
    `headers`: the others, in order (Message-ID, Reply-To, List-Unsubscribe...)."""
    lines = [
        f"From: {from_header}",
        f"To: {address_header('To', to)}",
        f"Subject: {_header_value('Subject', subject)}",
        f"Date: {date}",
    ]
    lines.extend(f"{name}: {_header_value(name, value)}" for name, value in headers.items())
    lines.append("MIME-Version: 1.0")
    if not html:
        head = "\r\n".join(lines) + "\r\n"
        return head.encode() + _part("text/plain", text)
    boundary = f"=_{boundary_key}"
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    marker = f"\r\n--{boundary}\r\n".encode()
    return b"".join(
        [
            ("\r\n".join(lines) + "\r\n\r\n").encode(),
            marker[2:],
            _part("text/plain", text),
            marker,
            _part("text/html", html),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
