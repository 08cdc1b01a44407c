"""Host-supplied text made safe to show to a person: the one sanitizer every front end uses.

Hosts tell loadmaster things in their own words: replica names read from their records, the
reason a probe cannot run, a command's stderr. A hostile or broken host can put terminal escape
sequences in them (`ESC[2J` clears the operator's screen, others retitle the window or remap
keys), or Unicode bidi controls (U+202E turns `web/1` into what looks like other text). Before
such text reaches a terminal — `loadmaster hosts`, `status`, `plan`, error messages, the console —
it goes through `printable`, which writes each such character as a visible escape (`\\x1b`,
`\\u202e`), so the operator sees that something odd was sent rather than having it acted on.

Markup is the console's business: it shows host text as `rich.text.Text` (`console.formatting.literal`),
which Textual never parses as markup, so `[bold red]` from a host is shown as those ten characters.
The daemon's log lines on stderr go through `PrintableFormatter`. JSON output needs nothing from here:
`json.dumps` escapes every control and non-ASCII character.
"""

from __future__ import annotations

import logging
import re

# C0 controls (ESC among them), DEL, C1 controls (a single U+009B is a CSI on some terminals), the
# line and paragraph separators, and the bidi controls: embeddings, overrides, isolates and marks.
_OTHERS = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_UNSAFE_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHERS}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, newlines: bool = False) -> str:
    """`text` (anything; `str()` of it) with every control, separator and bidi character as a visible
    escape; with `newlines`, line breaks are kept (for messages of several lines)."""
    return (_UNSAFE_BUT_NEWLINE if newlines else _UNSAFE).sub(_escape, str(text))


class PrintableFormatter(logging.Formatter):
    """Log lines for a terminal: what a record says (host errors, a server's refusal, a traceback
    quoting either) passes through `printable`, line breaks kept."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), newlines=True)
