"""What text from a client the registry stores: one cleaner for every free-text field.

Pure functions only: no I/O, no logging. Every name, note, reason and other free
text a client sends goes through ``clean_text`` before it is stored; search text
goes through ``clean_query``. Identifiers (credit codes, document numbers) have
their own, stricter rules in ``registry.identifiers``.

The rules, in order:

1. Surrounding whitespace (Unicode ``Zs`` spaces, tab, line breaks, U+2028/U+2029)
   and surrounding zero-width characters (U+200B–U+200D, U+2060, U+FEFF) are dropped.
2. What remains is refused, naming the field and the first offending code point as
   ``U+XXXX`` with its position (1-based, in the value as sent), if it holds
   - a control character (category ``Cc``: U+0000–U+001F, U+007F–U+009F). NUL is
     always refused: PostgreSQL cannot store it. Multi-line fields (facts, grounds,
     notes, reasons …, ``multiline=True``) accept line breaks and tabs; every line
     break (CR LF, CR, U+2028, U+2029) is stored as LF. One-line fields (names,
     numbers, codes …) accept neither;
   - a bidirectional formatting character: embeddings, overrides and their pop
     (U+202A–U+202E), isolates (U+2066–U+2069) and the marks LRM, RLM, ALM
     (U+200E, U+200F, U+061C). The marks are refused too: they are invisible, the
     registry's text is Chinese (or Latin) and never needs them, and they can
     reorder neutral characters such as digits and brackets on screen;
   - another invisible character that hides or alters text: the deprecated
     format characters U+206A–U+206F, the interlinear annotation characters
     U+FFF9–U+FFFB and the tag characters U+E0000–U+E007F;
   - a lone surrogate (U+D800–U+DFFF) or a noncharacter (U+FDD0–U+FDEF and the
     last two code points of every plane, U+xxFFFE and U+xxFFFF).
3. The text is put in Unicode normalisation form C (canonical composition:
   ``e`` + U+0301 becomes ``é``). NFC changes no Chinese character, simplified
   or traditional, and no full-width form; it does map the CJK compatibility
   ideographs (U+F900–U+FAFF, U+2F800–U+2FA1F) to their unified equivalents, as
   Unicode's canonical equivalence requires.
4. Text with no visible character is blank: one made only of whitespace,
   zero-width and other format characters, combining marks, variation selectors
   or Hangul fillers. Blank is refused (``required`` or not: a field given is a
   field meant).

Kept on purpose: zero-width characters and variation selectors *inside* text (ZWJ
joins emoji, an ideographic variation selector picks a glyph of a rare character
in a name), private-use characters (rare characters of personal names are still
often typed from private-use fonts), and code points this Python does not know
yet (newer CJK extensions).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, Literal, overload

from registry.errors import InvalidInput

__all__ = ["ACCEPTED", "ACCEPTED_MULTILINE", "clean_query", "clean_text", "is_visible"]

# Unicode's Zs space separators (unicodedata 14/15; tests check this list against
# unicodedata), the whitespace controls that may surround a value, the line and
# paragraph separators, and the zero-width characters.
_SPACES: Final = " \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
_ZERO_WIDTH: Final = "\u200b\u200c\u200d\u2060\ufeff"
_EDGE: Final = _SPACES + "\t\n\r\u2028\u2029" + _ZERO_WIDTH

_BIDI: Final = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
_HIDING: Final = "\u206a-\u206f\ufff9-\ufffb\U000e0000-\U000e007f"
_SURROGATES: Final = "\ud800-\udfff"
_NONCHARACTERS: Final = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17)
)
# Everything refused in every field, and what is refused besides in one-line fields.
_ALWAYS: Final = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f" + _BIDI + _HIDING + _SURROGATES + _NONCHARACTERS
)
_FORBIDDEN_MULTILINE: Final = re.compile(f"[{_ALWAYS}]")
_FORBIDDEN_ONE_LINE: Final = re.compile(f"[{_ALWAYS}\t\n\r\u2028\u2029]")
_LINE_BREAK: Final = re.compile("\r\n|[\r\u2028\u2029]")

# Letters drawn as nothing although Unicode calls them letters or symbols.
_BLANK_GRAPHIC: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_INVISIBLE_CATEGORIES: Final = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Mn", "Mc", "Me"})

ACCEPTED: Final = (
    "one line of visible text without control characters, bidirectional formatting "
    "characters, noncharacters or other hidden characters"
)
ACCEPTED_MULTILINE: Final = (
    "visible text (line breaks and tabs allowed) without other control characters, "
    "bidirectional formatting characters, noncharacters or other hidden characters"
)

_CONTROL_NAMES: Final = {
    0x00: "NULL", 0x09: "TAB", 0x0A: "LINE FEED", 0x0D: "CARRIAGE RETURN", 0x1B: "ESCAPE",
    0x7F: "DELETE", 0x85: "NEXT LINE",
}


def _describe_at(char: str, position: int) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE at position 3``, and why such a character is refused."""
    point = ord(char)
    name = _CONTROL_NAMES.get(point) or unicodedata.name(char, "")
    label = f"U+{point:04X}" + (f" {name}" if name else "") + f" at position {position}"
    if char in "\t\n\r\u2028\u2029":
        why = "a line break or tab, which this one-line field does not take"
    elif point <= 0x9F:
        why = "a control character"
    elif re.fullmatch(f"[{_BIDI}]", char):
        why = "a bidirectional formatting character, which reorders how text is displayed"
    elif 0xD800 <= point <= 0xDFFF:
        why = "a lone surrogate, which is not a character"
    elif re.fullmatch(f"[{_NONCHARACTERS}]", char):
        why = "a Unicode noncharacter"
    else:
        why = "an invisible character that hides or alters text"
    return f"{label}: {why}"


def is_visible(char: str) -> bool:
    """Whether ``char`` draws something by itself (a letter, digit, symbol, punctuation).

    Private-use and unassigned code points count as visible: they may be rare
    characters of a name, or characters newer than this Python's Unicode tables.
    """
    return char not in _BLANK_GRAPHIC and unicodedata.category(char) not in _INVISIBLE_CATEGORIES


def _checked(value: str, field: str, multiline: bool) -> str:
    """The value without its surrounding space, refused if a forbidden character remains."""
    start = len(value) - len(value.lstrip(_EDGE))
    text = value.strip(_EDGE)
    pattern = _FORBIDDEN_MULTILINE if multiline else _FORBIDDEN_ONE_LINE
    bad = pattern.search(text)
    if bad is not None:
        position = start + bad.start() + 1
        raise InvalidInput(
            field,
            f"has {_describe_at(bad.group(), position)}",
            ACCEPTED_MULTILINE if multiline else ACCEPTED,
        )
    if multiline:
        text = _LINE_BREAK.sub("\n", text)
    # NFC only composes and reorders marks: it adds no forbidden character and no
    # surrounding space, so the checks above hold for its result.
    return unicodedata.normalize("NFC", text)


@overload
def clean_text(
    value: str | None,
    field: str,
    *,
    required: Literal[True],
    multiline: bool = False,
    max_length: int | None = None,
) -> str: ...


@overload
def clean_text(
    value: str | None,
    field: str,
    *,
    required: bool = False,
    multiline: bool = False,
    max_length: int | None = None,
) -> str | None: ...


def clean_text(
    value: str | None,
    field: str,
    *,
    required: bool = False,
    multiline: bool = False,
    max_length: int | None = None,
) -> str | None:
    """The text to store for ``field``: trimmed and in NFC, or ``InvalidInput`` naming ``field``.

    None stays None unless ``required``. Blank text (nothing visible) is refused
    even when not required. ``max_length`` counts code points after cleaning.
    """
    accepted = ACCEPTED_MULTILINE if multiline else ACCEPTED
    if value is None:
        if required:
            raise InvalidInput(field, "is required", accepted)
        return None
    text = _checked(value, field, multiline)
    if not any(is_visible(char) for char in text):
        reason = "is blank" if not value else "is blank: it has no visible character"
        raise InvalidInput(field, reason, accepted)
    if max_length is not None and len(text) > max_length:
        raise InvalidInput(
            field, f"is {len(text)} characters long", f"{accepted}, at most {max_length} characters"
        )
    return text


def clean_query(value: str | None, field: str) -> str | None:
    """Search text as it is to be compared: trimmed and in NFC; None if nothing is left.

    Short and partial text is fine (a prefix, one character); characters refused
    in one-line fields are refused here too, naming ``field``. Text with no visible
    character searches for nothing in particular, so it means no filter (None).
    """
    if value is None:
        return None
    text = _checked(value, field, multiline=False)
    if not any(is_visible(char) for char in text):
        return None
    return text
