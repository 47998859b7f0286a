"""The text of a grounded chain of thought: its ``Keywords:`` line, keyword merging, box injection.

Pure module: standard library only (no torch, transformers or numpy), so it imports anywhere.
Like :mod:`hfgcot.parsing.grounding`, **no function here raises on any ``str`` input**: model output is
untrusted, so each function returns the input (or an empty result) when it cannot do better.

- :func:`parse_gcot` -- split a chain-of-thought from its ``Keywords:`` line.
- :func:`merge_keywords` -- join adjacent keywords that the reasoning writes as one phrase.
- :func:`answer_start` -- where the final ``Answer:`` line of a reasoning begins.
- :func:`inject_groundings` -- write annotations after the first mention of each phrase.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hfgcot.parsing.answers import find_answer
from hfgcot.parsing.guard import guard
from hfgcot.parsing.phrases import dedupe, mention_pattern, phrase_key

__all__ = ["answer_start", "inject_groundings", "merge_keywords", "parse_gcot"]

# --------------------------------------------------------------------------------------------
# GCoT keywords
# --------------------------------------------------------------------------------------------

_KEYWORD_WORD_RE = re.compile(r"(?<!\w)key[ \t]?words?(?!\w)", re.I)
_MD = r"(?:\*\*|__|\*|_)?"
_AFTER_KEYWORD_RE = re.compile(
    rf"[ \t]*{_MD}[ \t]*(?P<sep>:|-|–|—)?[ \t]*{_MD}(?P<rest>[^\n]*)", re.I
)
_LINE_MARKER_RE = re.compile(r"^\s*(?:#{1,6}|>|[-*+•]|\d{1,3}[.)])?\s*")
_HEADER_PREFIX_WORDS = {"", "extracted", "visual", "relevant", "final", "object", "image", "the"}
_LIST_ITEM_RE = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+(?P<item>\S.*)$")
_FIELD_LINE_RE = re.compile(r"^\s*(?:\*\*|__)?\s*[A-Za-z][A-Za-z ]{0,30}(?:\*\*|__)?\s*:")
_SENTENCE_END_RE = re.compile(r"[.!?](?:\s+|$)")
_KEYWORD_SPLIT_RE = re.compile(r"[,;|\n，、；]")
_KEYWORD_STRIP = " \t\r\n\"'`*_[](){}<>.,;:!?-–—#•“”‘’"
_NO_KEYWORDS = {"none", "n/a", "null", "nothing"}
_MAX_ITEM_WORDS = 8


def _clean_keyword(item: str) -> str:
    item = re.sub(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+", "", item)
    item = item.replace("**", "").replace("`", "")
    return " ".join(item.split()).strip(_KEYWORD_STRIP).strip()


def _looks_like_sentence(line: str) -> bool:
    words = line.split()
    return len(words) >= 4 and line.rstrip().endswith((".", "!", "?"))


def _keyword_header(text: str) -> tuple[int, int, str] | None:
    """(section start, header line end, text after the separator) of the last keyword header."""
    for match in reversed(list(_KEYWORD_WORD_RE.finditer(text))):
        line_start = text.rfind("\n", 0, match.start()) + 1
        prefix = text[line_start : match.start()]
        after = _AFTER_KEYWORD_RE.match(text, match.end())
        if after is None:  # pragma: no cover - the pattern always matches
            continue
        sep, rest = after.group("sep"), after.group("rest")
        core = _LINE_MARKER_RE.sub("", prefix).replace("*", "").replace("_", "").strip()
        at_line_start = core.lower() in _HEADER_PREFIX_WORDS
        if sep == ":" or (at_line_start and (sep is not None or not rest.strip(" \t\r*_#"))):
            marker = _LINE_MARKER_RE.match(prefix)
            skip = marker.end() if marker else 0
            ends = [m.end() for m in _SENTENCE_END_RE.finditer(prefix, skip)]
            start = line_start + ends[-1] if ends and not at_line_start else line_start
            return start, after.end(), rest
    return None


def _keyword_section(text: str) -> tuple[int, int, str] | None:
    """(start, end, content) of the keyword section: header line plus continuation lines."""
    header = _keyword_header(text)
    if header is None:
        return None
    start, end, rest = header
    parts = [rest]
    rest_core = rest.strip(" \t\r*_#")
    block_mode = rest_core in ("", "[", "(", "{")
    seen_item = bool(rest_core) and not block_mode
    pos = end
    while pos < len(text):
        next_nl = text.find("\n", pos + 1)
        line_end = len(text) if next_nl == -1 else next_nl
        line = text[pos + 1 : line_end]  # text[pos] is the newline ending the previous line
        stripped = line.strip()
        if block_mode:
            if not stripped:
                if seen_item:
                    break
            elif re.fullmatch(r"[\[\](){}]+,?", stripped):
                pass
            elif (
                _FIELD_LINE_RE.match(line)
                or _looks_like_sentence(stripped)
                or any(
                    len(item.split()) > _MAX_ITEM_WORDS for item in _KEYWORD_SPLIT_RE.split(line)
                )
            ):
                break
            else:
                seen_item = True
        else:
            item = _LIST_ITEM_RE.match(line)
            if item is None or len(item.group("item").split()) > _MAX_ITEM_WORDS:
                break
        parts.append(line)
        end = line_end
        pos = line_end
    return start, end, "\n".join(parts)


def _split_keywords(content: str) -> list[str]:
    body = content.strip().replace("**", "")
    if len(body) >= 2 and body[0] + body[-1] in ("[]", "()", "{}"):
        body = body[1:-1]
    keywords: list[str] = []
    seen: set[str] = set()
    for raw in _KEYWORD_SPLIT_RE.split(body):
        keyword = _clean_keyword(raw)
        key = phrase_key(keyword)
        if keyword and key and key not in seen and keyword.casefold() not in _NO_KEYWORDS:
            seen.add(key)
            keywords.append(keyword)
    return keywords


def parse_gcot(text: str) -> tuple[str, list[str]]:
    """Split GCoT output into ``(cleaned_cot, keywords)``.

    The last keyword header wins: ``Keywords: a, b``, ``**Keywords:** a; b``, ``Keywords - a``,
    ``keywords: [a, b]``, or a ``Keywords:`` line followed by a bulleted/numbered list. The
    keyword section is cut out of the text (lines after it, such as ``Answer:``, stay).
    Keywords are cleaned of quotes, brackets and markdown, whitespace-collapsed, deduplicated
    case-insensitively (first spelling kept); ``none``/``n/a`` mean no keyword. Never raises.

    >>> parse_gcot("1. A red car is parked.\\n2. So yes.\\n**Keywords:** red car; Tree, tree")
    ('1. A red car is parked.\\n2. So yes.', ['red car', 'Tree'])
    >>> parse_gcot("Step 1. Look.\\nKeywords:\\n- cat\\n- dog\\n\\nAnswer: yes")
    ('Step 1. Look.\\nAnswer: yes', ['cat', 'dog'])
    >>> parse_gcot("no header here ")
    ('no header here', [])
    """
    try:
        if not isinstance(text, str):
            return "", []
        section = _keyword_section(text)
        if section is None:
            return text.strip(), []
        start, end, content = section
        before, after = text[:start].rstrip(), text[end:].strip()
        cleaned = f"{before}\n{after}" if before and after else before or after
        return cleaned.strip(), _split_keywords(content)
    except Exception as exc:  # never take a stage down on odd model output
        guard(exc, "parse_gcot")
        return (text.strip() if isinstance(text, str) else ""), []


# --------------------------------------------------------------------------------------------
# Keyword merging and injection
# --------------------------------------------------------------------------------------------


def merge_keywords(keywords: list[str], reasoning: str, max_join: int = 3) -> list[str]:
    """Merge adjacent keywords that the reasoning writes as one phrase.

    Scanning left to right, at each keyword try the longest run of up to ``max_join`` adjacent
    keywords whose space-joined phrase occurs in ``reasoning`` (case-insensitive, on word
    boundaries, any whitespace between words); take it, else keep the keyword alone. The result
    is deduplicated case-insensitively (first spelling kept). Never raises.

    >>> merge_keywords(["red", "car", "tree"], "The red car is parked near a tree")
    ['red car', 'tree']
    >>> merge_keywords(["big", "red", "car"], "a big red car", max_join=2)
    ['big red', 'car']
    """
    try:
        words = [" ".join(str(k).split()) for k in keywords if isinstance(k, str)]
        words = [w for w in words if w]
        reasoning = reasoning if isinstance(reasoning, str) else ""
        max_join = max(1, int(max_join))
        merged: list[str] = []
        i = 0
        while i < len(words):
            take = 1
            for n in range(min(max_join, len(words) - i), 1, -1):
                if mention_pattern([" ".join(words[i : i + n])]).search(reasoning):
                    take = n
                    break
            merged.append(" ".join(words[i : i + take]))
            i += take
        return dedupe(merged)
    except Exception as exc:  # never take a stage down on odd model output
        guard(exc, "merge_keywords")
        return []


def answer_start(text: str) -> int:
    """Start of the protected final-answer part: the line of the last answer marker.

    The marker is :func:`hfgcot.parsing.answers.find_answer`'s; ``len(text)`` when there is none.

    >>> answer_start("1. Look.\\n**Answer:** yes")
    9
    >>> answer_start("no answer line")
    14
    """
    marker = find_answer(text)
    return marker.line_start if marker is not None else len(text)


def inject_groundings(text: str, annotations: Sequence[tuple[str, str]]) -> str:
    """Insert ``" " + annotation`` right after the first free mention of each phrase.

    Phrases are processed longest first (ties keep the given order), matched case-insensitively
    on word boundaries. A mention is free when it lies before the final ``Answer:`` line (see
    :func:`answer_start`) and does not overlap a mention already claimed by another phrase, so
    after ``"red car"`` is annotated a later ``"car"`` needs a mention of its own. Pairs with the
    same phrase (case-insensitive) are written together at one mention, in the given order.
    Phrases not found and empty phrases/annotations are skipped. Only the annotation strings are
    added: removing them gives back ``text``. Never raises.

    >>> inject_groundings("A red car near a car.\\nAnswer: car", [("car", "[9]"), ("red car", "[1]")])
    'A red car [1] near a car [9].\\nAnswer: car'
    >>> inject_groundings("这个红色圆形在左边", [("红色圆形", "[1, 2, 3, 4]")])
    '这个红色圆形 [1, 2, 3, 4]在左边'
    """
    try:
        if not isinstance(text, str):
            return text
        groups: dict[str, tuple[str, list[str]]] = {}
        for pair in annotations:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                continue
            phrase, annotation = pair
            if not isinstance(phrase, str) or not isinstance(annotation, str):
                continue
            key = " ".join(phrase.split()).casefold()
            if not key or not annotation.strip():
                continue
            groups.setdefault(key, (" ".join(phrase.split()), []))[1].append(annotation)
        limit = answer_start(text)
        claimed: list[tuple[int, int]] = []
        inserts: list[tuple[int, int, str]] = []
        ordered = sorted(groups.values(), key=lambda group: -len(group[0]))
        for order, (phrase, notes) in enumerate(ordered):
            pattern = mention_pattern([phrase])
            pos = 0
            while (match := pattern.search(text, pos, limit)) is not None:
                start, end = match.span()
                if any(start < c_end and c_start < end for c_start, c_end in claimed):
                    pos = start + 1
                    continue
                claimed.append((start, end))
                inserts.append((end, order, " " + " ".join(notes)))
                break
        out: list[str] = []
        previous = 0
        for end, _, insertion in sorted(inserts):
            out.append(text[previous:end])
            out.append(insertion)
            previous = end
        out.append(text[previous:])
        return "".join(out)
    except Exception as exc:  # fall back to the untouched text
        guard(exc, "inject_groundings")
        return text
