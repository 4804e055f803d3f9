"""Back-office messages the shop accepts: GesCom text (carrier names, article references, tracking fields) made
to pass PrestaShop's validation of messages, its information kept, cut to the length the shop's version takes.

What the shop checks (PrestaShop classes/Validate.php, classes/Message.php, classes/CustomerMessage.php, and
ObjectModel::validateField; the 8.1.2 recording: schema_synopsis_messages, schema_synopsis_customer_messages):

* `messages` (class Message: the legacy table the order page reads before 1.7.7): Validate::isCleanHtml and at
  most 1600 characters, in every version (8.1.2 synopsis: `maxSize="1600" format="isCleanHtml"`).
* `customer_messages` (class CustomerMessage, what the order page reads since 1.7.7): isCleanHtml and 16777216
  characters on 1.7; no validator on 8.x (8.1.2 synopsis: `maxSize="16777216"`, no format); 9.x's core checks
  isCleanHtml again, at most 4194303 characters (FormattedTextareaType::LIMIT_MEDIUMTEXT_UTF8_MB4).
* A refusal is 400 code 85 ("Validation error: ..."): before this module, one carrier name holding `<script>`
  failed the whole update.
* Validate::isCleanHtml refuses, case-insensitively and anywhere in the text (not only inside a tag):
  `<\\s*script`, an event handler name followed by `=` (`onload=`, `onclick =`...), `script:` (`javascript:`,
  `vbscript:`), and `<\\s*(i?frame|form|input|embed|object)`.
* Tools::strlen counts characters (mb_strlen), as len() does.
* Before 1.7.7 the tables are utf8 (3 bytes a character; utf8mb4 came with 1.7.7): MySQL cuts a text at the first
  character outside the BMP (an emoji).
* The body is XML 1.0: a control character makes it unreadable (500 code 127, which looks like a failure that may
  have been applied, so it would be retried for ever); XML reads "\\r\\n" as "\\n".

Nothing is dropped that a reader needs: `<` and `>` become `‹` and `›`, the `=` of an event handler and the `:`
of `script:` their full-width forms, so the text reads the same and the shop's patterns no longer match.
"""

from __future__ import annotations

import re

LEGACY_MAX = 1600  # Message: size 1600 in every version
THREAD_MAX = 16777216  # CustomerMessage, 1.7 and 8.x
THREAD_MAX_9 = 4194303  # CustomerMessage, 9.x
MAX_PARTS = 10  # a longer text is cut after this many messages, rather than flooding the order page
PART_ROOM = 16  # room kept in each part for its "(n/N) " mark

# Broader than PrestaShop's list of events (on + letters, then `=`): harmless, and it holds for future lists.
_HANDLER = re.compile(r"(on[a-z]+)(\s*)=", re.IGNORECASE)
_SCRIPT_COLON = re.compile(r"(script):", re.IGNORECASE)
# What XML 1.0 cannot carry: C0 controls but tab and newline, lone surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_OUTSIDE_BMP = re.compile("[\U00010000-\U0010ffff]")
_CUT_AFTER = (", ", " : ", " ")  # where a long text is best cut, in order of preference


def message_limit(version: tuple[int, ...], *, legacy: bool) -> int:
    """The longest message the shop takes: `legacy` is the `messages` resource, else `customer_messages`."""
    if legacy:
        return LEGACY_MAX
    return THREAD_MAX_9 if version[:1] >= (9,) else THREAD_MAX


def clean_text(text: str, *, utf8mb4: bool = True) -> str:
    """`text` as a message isCleanHtml accepts, in an XML body the shop reads back unchanged."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _NOT_XML.sub("", _SURROGATE.sub("\ufffd", text))
    if not utf8mb4:
        text = _OUTSIDE_BMP.sub("\ufffd", text)
    text = text.replace("<", "‹").replace(">", "›")
    text = _HANDLER.sub(lambda match: f"{match.group(1)}{match.group(2)}＝", text)
    return _SCRIPT_COLON.sub(lambda match: f"{match.group(1)}：", text).strip()


def shop_texts(text: str, version: tuple[int, ...], *, legacy: bool) -> list[str]:
    """The message(s) a shop of `version` accepts for `text`: cleaned, and when too long cut into numbered parts
    ("(1/3) ...") that each fit; none for a text left empty."""
    cleaned = clean_text(text, utf8mb4=version[:3] >= (1, 7, 7))
    limit = message_limit(version, legacy=legacy)
    if not cleaned:
        return []
    if len(cleaned) <= limit:
        return [cleaned]
    chunks = _chunks(cleaned, limit - PART_ROOM)
    return [f"({number}/{len(chunks)}) {chunk}" for number, chunk in enumerate(chunks, start=1)]


def _chunks(text: str, room: int) -> list[str]:
    """`text` in pieces of at most `room` characters, cut after a separator when one is near the end."""
    chunks: list[str] = []
    while text:
        if len(chunks) == MAX_PARTS - 1 and len(text) > room:
            chunks.append(text[: room - 1].rstrip() + "…")
            break
        if len(text) <= room:
            chunks.append(text)
            break
        cut = room
        for separator in _CUT_AFTER:
            found = text.rfind(separator, room // 2, room)
            if found > 0:
                cut = found + len(separator.rstrip())  # the separator's mark stays with the first piece
                break
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return chunks
