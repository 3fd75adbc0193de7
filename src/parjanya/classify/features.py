"""Measure a request's text once, into numbers every later stage reads.

Scorers, domain detection and policy never look at the raw text again: they read `TextFeatures`.
That keeps the text pass in one place (where its cost is paid and measured) and makes a scorer a
pure function of numbers, which is what a learned scorer will need too. Patterns are compiled at
import; word cues are one tokenising `findall`, then set and dictionary lookups over the distinct
words, never one regex per keyword.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from parjanya.classify import lexicon as lx
from parjanya.classify.pii import detect_pii
from parjanya.schema import Sla, TaskRequest

#: A rough, tokenizer-free estimate: English prose and code average about four characters a token.
CHARS_PER_TOKEN = 4
#: Words at least this long count as concepts (see `_concepts`).
CONCEPT_MIN_LETTERS = 7

# Python's regex engine scans fast only for a literal first character; a pattern that starts with
# a character class is tried at nearly every position. So patterns here start with a literal
# (often "\n", on text prefixed with one), counts come from the token table where possible, and
# the few class-first scans (tokens, math symbols) run once or only when a substring test passes.
_TOKEN = re.compile(r"[A-Za-z0-9]\w*(?:['-]\w+)*")  # "don't", "trade-off"; not "customers'"
_BULLET = re.compile(r"\n[ \t]*[-*•+][ \t]+\S")
_NUMBERED_LINE = re.compile(r"\n[ \t]*(?:\d{1,2}[.)]|\(\d{1,2}\)|[a-h][.)]|[Ss]tep[ \t]+\d+\b)")
_INLINE_ENUMERATION = re.compile(r"\((?:\d{1,2}|[a-h]|i{1,3}|iv|vi{0,3})\)(?=\s)")
_CODE_LINE_START = re.compile(
    r"\n[ \t]*(?:def|class|import|from \S+ import|return|const|let|var|func|fn|public|private"
    r"|package|#include|SELECT|INSERT|UPDATE|DELETE|CREATE TABLE)\b"
)
_CODE_LINE_ENDINGS = (";\n", "{\n", "}\n", "):\n", "=>\n")
_TIMESTAMP = re.compile(r":\d\d:\d\d")
#: Words that mark a pasted log line; counted from the token table, not by another text scan.
_LOG_MARKERS = ("ERROR", "WARN", "WARNING", "INFO", "DEBUG", "FATAL", "PANIC", "Traceback")
_MATH_SYMBOL = re.compile(r"[≤≥∑∫√π∞±×÷∀∃∈∉⊆⊂∪∩⇒⇔≈≠θλσμΘΩ]")  # noqa: RUF001 (skipped for ASCII)
_MATH_NOTATION = re.compile(
    r"O\([^()\n]{1,20}\)"
    r"|\\(?:frac|sum|int|sqrt|log|cdot|leq|geq|forall|exists)\b"
    r"|\^[\d{a-z(]"
    r"|log ?\(?n\b"
)
_MATH_HINTS = ("O(", "\\", "^", "log")
_SENTENCE_ENDS = (". ", ".\n", "? ", "?\n", "! ", "!\n")
_PATH = re.compile(r"/[\w.-]+(?:/[\w.-]+)*")
_FILE_EXTENSION = re.compile(
    r"\.(?:py|pyi|js|ts|tsx|jsx|go|rs|java|kt|rb|c|h|cc|cpp|hpp|cs|md|rst|ya?ml|json"
    r"|toml|ini|cfg|sql|sh|txt|log|csv|html|css|proto|tf|lock)\b"
)
_CODE_FENCE = "```"
_DOMAIN_TAGS = tuple(sorted((domain, lx.DOMAIN_PREFIX + domain) for domain in lx.DOMAINS))


@dataclass(frozen=True, slots=True)
class TextFeatures:
    """Counts measured from one request: raw, with meaning given by `dimensions.py` curves."""

    chars: int
    words: int
    text_tokens: int
    context_tokens: int  # the caller's hint of attached context (files, retrieved documents)
    sentences: int
    lines: int
    list_items: int  # bulleted lines
    numbered_steps: int  # numbered lines, "step 3", inline "(a) ... (b)" enumerations
    sequence_markers: int  # first / then / finally ...
    code_blocks: int
    code_lines: int
    log_lines: int
    math_symbols: int
    questions: int
    clause_breaks: int  # ", " and "; ": inline enumerations of parts ("pagination, filtering, ...")
    explanation_requests: int  # "why" and "how": asks for reasoning, not just an artefact
    constraint_words: int
    conditionals: int
    technical_terms: int  # distinct identifiers: snake_case, CamelCase, ACRONYMS
    concepts: int  # distinct words of 7+ letters: how many things the request is about
    numbers: int
    vague_words: int
    open_scope_words: int
    reasoning_words: int
    tradeoff_words: int
    deliverables: int  # distinct action verbs: how many things are being asked for
    risk_terms: int
    destructive_terms: int
    file_refs: int
    urls: int
    wants_json: bool
    pii: tuple[str, ...]
    sla: Sla
    max_output_tokens: int
    domain_terms: tuple[tuple[str, int], ...]  # (domain, hits), domains with at least one hit

    @property
    def estimated_tokens(self) -> int:
        """Input tokens the model will see: the text plus whatever the caller said it attaches."""
        return self.text_tokens + self.context_tokens

    @property
    def specifics(self) -> int:
        """Concrete anchors (names, numbers, paths, code): what makes a request unambiguous."""
        return self.technical_terms + self.numbers + self.file_refs + self.urls + self.code_lines


def request_text(request: TaskRequest) -> str:
    """What the classifier reads: the prompt, or the messages' text when there is no prompt."""
    return request.prompt if request.prompt is not None else request.text()


def measure(request: TaskRequest) -> TextFeatures:
    """The features of a request: its text plus the hints it carries (context size, SLA, format)."""
    return measure_text(
        request_text(request),
        context_tokens=request.context_tokens or 0,
        sla=request.sla,
        wants_json=request.response_format == "json",
        max_output_tokens=request.max_output_tokens,
    )


def measure_text(
    text: str,
    *,
    context_tokens: int = 0,
    sla: Sla = Sla.standard,
    wants_json: bool = False,
    max_output_tokens: int = 1024,
) -> TextFeatures:
    """The features of bare text, for callers (tests, offline scoring) that have no request."""
    tokens = _TOKEN.findall(text)
    counts = Counter(tokens)
    tags, deliverables = _count_tags(counts, text)
    code_blocks, fenced_lines = _fenced_code(text)
    lined = "\n" + text  # lets line-start patterns begin with a literal newline
    return TextFeatures(
        chars=len(text),
        words=len(tokens),
        text_tokens=(len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN,
        context_tokens=context_tokens,
        sentences=_sentences(text),
        lines=lined.count("\n"),
        list_items=len(_BULLET.findall(lined)),
        numbered_steps=len(_NUMBERED_LINE.findall(lined)) + len(_INLINE_ENUMERATION.findall(text)),
        sequence_markers=tags[lx.SEQUENCE],
        code_blocks=code_blocks,
        code_lines=max(fenced_lines, _code_like_lines(lined)),
        log_lines=max(len(_TIMESTAMP.findall(text)), sum(counts[m] for m in _LOG_MARKERS)),
        math_symbols=_math_symbols(text),
        questions=text.count("?"),
        clause_breaks=text.count(", ") + text.count("; "),
        explanation_requests=tags[lx.EXPLAIN],
        constraint_words=tags[lx.CONSTRAINT],
        conditionals=tags[lx.CONDITIONAL],
        technical_terms=_identifiers(counts),
        concepts=_concepts(counts),
        numbers=sum([count for word, count in counts.items() if word[0].isdigit()]),
        vague_words=tags[lx.VAGUE],
        open_scope_words=tags[lx.OPEN_SCOPE],
        reasoning_words=tags[lx.REASONING],
        tradeoff_words=tags[lx.TRADEOFF],
        deliverables=deliverables,
        risk_terms=tags[lx.RISK],
        destructive_terms=tags[lx.DESTRUCTIVE],
        file_refs=_file_refs(text),
        urls=text.count("http://") + text.count("https://"),
        wants_json=wants_json or tags[lx.JSON] > 0,
        pii=tuple(detect_pii(text)),
        sla=sla,
        max_output_tokens=max_output_tokens,
        domain_terms=_domain_terms(tags),
    )


def _count_tags(counts: Counter[str], text: str) -> tuple[dict[str, int], int]:
    """Hits per lexicon category, and how many distinct action verbs appear."""
    tags = dict(lx.NO_TAGS)
    actions: set[str] = set()
    table = lx.WORD_TAGS
    for word in counts.keys() & table.keys():
        count = counts[word]
        word_tags = table[word]
        for tag in word_tags:
            tags[tag] += count
        if lx.ACTION in word_tags:
            actions.add(word.lower())
    firsts = {lx.PHRASE_FIRST_WORDS[word] for word in counts.keys() & lx.PHRASE_FIRST_WORDS.keys()}
    if firsts:
        spaced = " " + " ".join(text.lower().split())
        for first in firsts:
            for pattern, phrase_tags in lx.PHRASES[first]:
                hits = len(pattern.findall(spaced))
                for tag in phrase_tags:
                    tags[tag] += hits
    return tags, len(actions)


def _identifiers(counts: Counter[str]) -> int:
    """Distinct snake_case, camelCase, inner-capital PascalCase or ACRONYM words: named things."""
    return len(
        [w for w in counts if w[0].isalpha() and ("_" in w or not (w.islower() or w.istitle()))]
    )


def _math_symbols(text: str) -> int:
    """Notation and symbols; each regex runs only if a cheap substring test says it could match."""
    notation = len(_MATH_NOTATION.findall(text)) if any(hint in text for hint in _MATH_HINTS) else 0
    return notation if text.isascii() else notation + len(_MATH_SYMBOL.findall(text))


def _concepts(counts: Counter[str]) -> int:
    """Distinct words of 7+ letters, case-folded. Long words are overwhelmingly content words
    (nouns, technical terms), so their variety measures how many things a request is about."""
    return len({w.lower() for w in counts if len(w) >= CONCEPT_MIN_LETTERS and w[0].isalpha()})


def _sentences(text: str) -> int:
    """Terminators followed by whitespace, plus the last sentence when it has no terminator."""
    stripped = text.rstrip()
    if not stripped:
        return 0
    ends = sum(text.count(end) for end in _SENTENCE_ENDS)
    return ends + (1 if text[len(stripped) :] == "" or stripped[-1] not in ".?!" else 0)


def _code_like_lines(lined: str) -> int:
    started = len(_CODE_LINE_START.findall(lined))
    ended = sum(lined.count(ending) for ending in _CODE_LINE_ENDINGS)
    return max(started, ended)


def _file_refs(text: str) -> int:
    """Path and file-name mentions, counted once each even when both patterns see them."""
    ends = {
        match.end()
        for match in _PATH.finditer(text)
        if text[match.start() - 1 : match.start()] not in ("/", ":")
        and (match.group().count("/") >= 2 or "." in match.group())
    }
    ends.update(match.end() for match in _FILE_EXTENSION.finditer(text))
    return len(ends)


def _fenced_code(text: str) -> tuple[int, int]:
    """Number of ``` blocks and the lines inside them."""
    if _CODE_FENCE not in text:
        return 0, 0
    parts = text.split(_CODE_FENCE)
    inside = parts[1::2]
    return len(inside), sum(part.count("\n") for part in inside)


def _domain_terms(tags: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple((domain, tags[tag]) for domain, tag in _DOMAIN_TAGS if tags[tag])
