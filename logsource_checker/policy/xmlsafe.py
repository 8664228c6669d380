"""Hardened XML parsing for policy inputs and Sysmon configurations.

Policy files come from other machines and other people, so they are parsed with lxml set up to
refuse anything beyond plain elements: no DTD loading, no entity expansion, no network access, no
huge-tree mode (libxml2's depth and size limits stay on). A document that carries a DOCTYPE at all
(the carrier of XXE and "billion laughs" attacks) is rejected before and after parsing. Encoding is
taken from the byte-order mark or the XML declaration by libxml2; a wrong declaration gives a
one-line ``PolicyInputError``, never a traceback.
"""
from __future__ import annotations

import os
import re

from .model import PolicyInputError

MAX_BYTES = 64 * 1024 * 1024  # policy inputs larger than this are refused unread

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
# "<!DOCTYPE" / "<!ENTITY" in any case, in 8-bit encodings and UTF-16 of either byte order
_DTD_RE = re.compile(rb"<\x00?!\x00?(\x00?[Dd]\x00?[Oo]\x00?[Cc]\x00?[Tt]\x00?[Yy]\x00?[Pp]\x00?[Ee]|"
                     rb"\x00?[Ee]\x00?[Nn]\x00?[Tt]\x00?[Ii]\x00?[Tt]\x00?[Yy])")


def one_line(text: object, limit: int = 200) -> str:
    """An error text squeezed to one short line (no file content beyond the parser's own words)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def read_limited(path: str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a policy input, refusing missing, non-regular and oversized files unread."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise PolicyInputError(path, "no such file") from None
    except OSError as exc:
        raise PolicyInputError(path, f"cannot read: {one_line(exc.strerror or exc)}") from None
    if os.path.isdir(path):
        raise PolicyInputError(path, "is a folder, not a file")
    if info.st_size > limit:
        raise PolicyInputError(path, f"file is {info.st_size // (1024 * 1024)} MB, over the "
                                     f"{limit // (1024 * 1024)} MB limit for policy inputs")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise PolicyInputError(path, f"cannot read: {one_line(exc.strerror or exc)}") from None
    if len(data) > limit:  # grew after stat, or a device/pipe
        raise PolicyInputError(path, f"file is over the {limit // (1024 * 1024)} MB limit for policy inputs")
    return data


def sniff_encoding(data: bytes) -> tuple[str | None, int]:
    """(encoding, BOM length) from a byte-order mark, or guessed UTF-16 without one; (None, 0) otherwise."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    head = data[:200]
    if len(head) >= 4:
        if head[1::2].count(0) > len(head) // 4 and head[0::2].count(0) == 0:
            return "utf-16-le", 0
        if head[0::2].count(0) > len(head) // 4 and head[1::2].count(0) == 0:
            return "utf-16-be", 0
    return None, 0


def looks_like_xml(data: bytes) -> bool:
    encoding, skip = sniff_encoding(data)
    try:
        head = data[skip:skip + 400].decode(encoding or "utf-8", errors="ignore")
    except LookupError:  # pragma: no cover
        return False
    return head.lstrip().startswith("<")


def has_dtd(data: bytes) -> bool:
    return _DTD_RE.search(data) is not None


def _parser():
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           dtd_validation=False, attribute_defaults=False, collect_ids=False)


def parse_xml_bytes(label: str, data: bytes):
    """Parse untrusted XML into an lxml root element, or raise ``PolicyInputError(label, one line)``."""
    from lxml import etree

    if len(data) > MAX_BYTES:
        raise PolicyInputError(label, f"over the {MAX_BYTES // (1024 * 1024)} MB limit for policy inputs")
    if not data.strip(b"\x00 \t\r\n\xef\xbb\xbf\xff\xfe"):
        raise PolicyInputError(label, "empty file")
    if has_dtd(data):
        raise PolicyInputError(label, "XML with a DOCTYPE or ENTITY declaration is refused "
                                      "(policy files never carry one; it is how XXE and entity-expansion attacks work)")
    _check_declaration(label, data)
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        detail = one_line(getattr(exc, "msg", None) or exc)
        raise PolicyInputError(label, f"not well-formed XML: {detail}") from None
    except (ValueError, LookupError, UnicodeError) as exc:
        raise PolicyInputError(label, f"cannot decode the XML: {one_line(exc)}") from None
    if root is None:
        raise PolicyInputError(label, "no XML root element")
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise PolicyInputError(label, "XML with a DOCTYPE is refused")
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise PolicyInputError(label, "XML with entity references is refused")
    return root


_DECL_RE = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")


def _check_declaration(label: str, data: bytes) -> None:
    """A one-line error for the common mislabelling: an 8-bit file whose declaration says UTF-16/32."""
    sniffed, skip = sniff_encoding(data)
    if sniffed not in (None, "utf-8"):
        return  # UTF-16 by BOM or byte pattern: libxml2 goes by the bytes
    match = _DECL_RE.match(data[skip:skip + 300])
    if match:
        declared = match.group(1).decode("ascii").casefold()
        if declared.startswith(("utf-16", "utf16", "ucs-2", "ucs2", "utf-32", "utf32", "ucs-4")):
            raise PolicyInputError(label, f"the XML declaration says encoding=\"{declared}\" but the file is not "
                                          "in that encoding (no byte-order mark, 8-bit bytes)")


def local_name(node) -> str:
    tag = node.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def namespace(node) -> str:
    tag = node.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return ""
    return tag[1:].split("}", 1)[0]
