"""Transcript -> insights: the sandbox's simple, deterministic stand-in for Symbl's language models.

Every id is derived from a hash of the conversation id plus the kind and index of the item, so the same
input always gives the same output, and appends keep the ids of earlier items.

Rules (English only: for a ``languageCode`` not starting with ``en`` the insight lists are empty, as
Symbl documents; messages are still returned):

* **messages**: one per caption cue (``Speaker: text``; no prefix -> ``Speaker 1``), times offset by the
  media already in the conversation. Captionless media with an audio track gets *filler* messages, marked
  ``[sandbox filler: …]`` (see ``media.py``); they are messages only: no rule below reads them, so a test
  tone or silence never yields an insight. Media without captions and without audio adds no message.
  ``sentiment`` (query ``sentiment=true``): lexicon score = (positive - negative) / words-hit, clipped to
  [-1, 1]; suggested ``positive`` > 0.3, ``negative`` < -0.3, else ``neutral``. ``words`` (``verbose=true``):
  the message time split evenly over its words. ``phrases`` (``detectPhrases=true``): the action phrase
  following a commitment phrase.
* **questions**: sentences ending with ``?``. Score 0.98 if they start with a wh-word or an auxiliary verb,
  else 0.85.
* **action items**: sentences containing a commitment phrase. ``I will``, ``I'll``, ``we will``, ``we'll``,
  ``will send`` ... are definitive (score 0.94); ``let's``, ``need to``, ``please``, ``should``, ``have to``,
  ``going to`` are not (score 0.8). ``assignee`` is the speaker for first-person phrases.
* **follow-ups**: action items that mention follow up / meet / call / schedule / send / email / sync
  (score 0.87).
* insights scoring below ``confidenceThreshold`` (default 0.5) are dropped. Dates (weekdays, today,
  tomorrow, next week) in an action item or follow-up become ``entities`` and set ``dueBy``.
* **topics**: stop-word-filtered bigrams and unigrams (3+ letters) counted over the transcript; those seen
  at least twice (or in ``customVocabulary``), at most 10, most frequent first; a unigram that is part of
  a chosen bigram is skipped. ``score`` = count / highest count. ``parentRefs=true``: a bigram topic's
  parent is its last word (the head noun), e.g. ``billing service`` -> ``service``.
* **entities** (managed ones unless ``detectEntities=false``, as the newest docs say; custom ones from the
  ``entities`` option): each custom entity's ``text`` found case-insensitively (category ``Custom``, type and
  subType its ``customType``); managed (category ``Managed``): ``person``/``name`` (known speaker names
  mentioned in the text), ``number``/``number`` (digits) and ``date``/``date`` (weekdays, today, tomorrow,
  yesterday, next week; ``value`` resolved to ``YYYY-MM-DD``). One entity per type with one match per
  distinct value; ``legacy`` shape: one flat entity per distinct value with all its ``messageRefs``.
* **trackers**: each ``{name, vocabulary}`` tracker whose phrases occur (case-insensitive) in a message:
  ``matches`` per phrase with ``messageRefs`` and ``insightRefs`` (questions/action items/follow-ups
  containing it). ``{id}`` references match nothing (no stored trackers in the sandbox).
* **analytics**: talk time per member = sum of their message durations; total talk time = union of message
  intervals; silence = conversation duration - talk time; overlap is empty (as for async jobs in Symbl);
  ``wpm`` = words / talk minutes.
* **summary**: the first statement (non-question sentence) of the conversation plus decision sentences
  (agreed, decided, decision, plan, conclude) and definitive action items, at most 5, each with
  ``messageRefs``.
* **members**: distinct speakers in order of first appearance; UUID ids from hashes; emails from
  ``channelMetadata`` speakers with the same name.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

ISO = "%Y-%m-%dT%H:%M:%S"

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further get got had
    has have having he her here hers herself him himself his how i i'll i'm if in into is it it's its itself
    just let let's me more most my myself need no nor not now of off on once only or other our ours ourselves
    out over own please same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we we'll we're were what when where which
    while who whom why will with would yes you your yours yourself yourselves right okay ok thanks thank
    going go one two also really well like know think want yeah us".""".split()
)
POSITIVE = frozenset(
    "good great excellent positive happy glad love like thanks thank awesome perfect agree agreed nice "
    "success successful passing works working progress ready improved better best".split()
)
NEGATIVE = frozenset(
    "bad problem problems issue issues blocking blocked sorry unfortunately wrong fail failed failing "
    "late delay delayed broken worse worst negative concern concerned risk angry difficult".split()
)
QUESTION_STARTS = frozenset(
    "what when where which who whom whose why how is are was were do does did can could will would "
    "should shall may might have has had am".split()
)
DEFINITIVE = ("i will", "i'll", "we will", "we'll", "i am going to", "i'm going to", "will send", "will do")
TENTATIVE = ("let's", "lets ", "need to", "needs to", "please", "should", "have to", "has to", "going to")
FOLLOW_UP = ("follow up", "follow-up", "meet", "call", "schedule", "send", "email", "sync")
DECISION = ("agreed", "agree ", "decided", "decision", "plan", "conclude")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DATE_WORDS = ("today", "tomorrow", "yesterday", "next week") + WEEKDAYS

_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_NUMBER = re.compile(r"(?<![\w.])\$?\d+(?:[.,]\d+)*%?")
_DATE = re.compile(r"\b(" + "|".join(DATE_WORDS) + r")\b", re.I)


def numeric_id(*parts: object) -> str:
    """A 16-digit numeric id (Symbl's style) derived from ``parts``."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()
    return str(4_000_000_000_000_000 + int(digest[:15], 16) % 2_000_000_000_000_000)


def uuid_id(*parts: object) -> str:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def iso(dt: datetime) -> str:
    dt = dt.astimezone(UTC)
    return dt.strftime(ISO) + f".{dt.microsecond // 1000:03d}Z"


@dataclass
class Message:
    id: str
    text: str
    speaker: str
    time_offset: float
    duration: float
    filler: bool = False  # the sandbox's stand-in for speech it cannot transcribe: never an insight


@dataclass
class Member:
    id: str
    name: str
    email: str | None = None

    def as_from(self, email_key: str = "email") -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.email:
            out[email_key] = self.email
        return out


class Transcript:
    """Messages of one conversation plus what the rules need to render them."""

    def __init__(self, conversation_id: str, start_time: datetime, options: dict[str, Any] | None = None):
        self.conversation_id = conversation_id
        self.start_time = start_time
        self.options = options or {}
        self.messages: list[Message] = []
        self.members: dict[str, Member] = {}
        self.duration = 0.0

    # -- building ---------------------------------------------------------------------------------------
    def member(self, name: str) -> Member:
        if name not in self.members:
            self.members[name] = Member(uuid_id(self.conversation_id, "member", name), name)
        member = self.members[name]
        for meta in self.options.get("channelMetadata") or []:
            speaker = meta.get("speaker") or {}
            if speaker.get("name") == name and speaker.get("email"):
                member.email = speaker["email"]
        return member

    def add(self, cues, base_offset: float, media_duration: float) -> list[Message]:
        """Append ``media.Cue`` items shifted by ``base_offset`` seconds; returns the new messages."""
        added = []
        for cue in cues:
            text = cue.text.strip()
            if not text:
                continue
            speaker = cue.speaker or "Speaker 1"
            self.member(speaker)
            msg = Message(
                id=numeric_id(self.conversation_id, "message", len(self.messages)),
                text=text,
                speaker=speaker,
                time_offset=round(base_offset + cue.start, 3),
                duration=round(max(0.0, cue.end - cue.start), 3),
                filler=getattr(cue, "filler", False),
            )
            self.messages.append(msg)
            added.append(msg)
        self.duration = max(self.duration, base_offset + media_duration)
        return added

    # -- helpers ----------------------------------------------------------------------------------------
    @property
    def english(self) -> bool:
        return str(self.options.get("languageCode") or "en-US").lower().startswith("en")

    def _threshold(self) -> float:
        value = self.options.get("confidenceThreshold")
        return 0.5 if value is None else float(value)

    def _time(self, offset: float) -> str:
        return iso(self.start_time + timedelta(seconds=offset))

    @property
    def spoken(self) -> list[Message]:
        """The messages the insight rules read: filler is left out."""
        return [m for m in self.messages if not m.filler]

    def sentences(self):
        for msg in self.spoken:
            for match in _SENTENCE.finditer(msg.text):
                sentence = match.group(0).strip()
                if sentence:
                    yield msg, sentence, match.start() + (len(match.group(0)) - len(match.group(0).lstrip()))

    # -- messages ---------------------------------------------------------------------------------------
    def _origin(self) -> float:
        """Media offset of the conversation's first message: ``timeOffset`` counts from there (messages page)."""
        return self.messages[0].time_offset if self.messages else 0.0

    def render_messages(self, *, verbose: bool = False, sentiment: bool = False) -> list[dict[str, Any]]:
        # Source: docs.symbl.ai conversation-api/messages (symbl-docs messages.md, "Response Object"):
        # timeOffset/duration are seconds "up to 2 decimal points", timeOffset = startTime of this sentence
        # (or word) - startTime of the very first sentence (or word) of the conversation.
        out = []
        detect_phrases = bool(self.options.get("detectPhrases"))
        origin = self._origin()
        for msg in self.messages:
            item: dict[str, Any] = {
                "id": msg.id,
                "text": msg.text,
                "from": self.members[msg.speaker].as_from(),
                "startTime": self._time(msg.time_offset),
                "endTime": self._time(msg.time_offset + msg.duration),
                "timeOffset": round(msg.time_offset - origin, 2),
                "duration": round(msg.duration, 2),
                "conversationId": self.conversation_id,
                "phrases": action_phrases(msg.text) if detect_phrases else [],
            }
            if sentiment:
                item["sentiment"] = sentiment_of(msg.text)
            if verbose:
                item["words"] = self._words(msg)
            out.append(item)
        return out

    def _words(self, msg: Message) -> list[dict[str, Any]]:
        words = msg.text.split()
        step = msg.duration / max(1, len(words))
        tag = list(self.members).index(msg.speaker) + 1
        return [
            {
                "word": word,
                "startTime": self._time(msg.time_offset + i * step),
                "endTime": self._time(msg.time_offset + (i + 1) * step),
                "timeOffset": round(msg.time_offset + i * step - self._origin(), 2),
                "duration": round(step, 2),
                "score": 0.95,
                "speakerTag": tag,
            }
            for i, word in enumerate(words)
        ]

    # -- questions, action items, follow-ups ---------------------------------------------------------------
    def questions(self) -> list[dict[str, Any]]:
        if not self.english:
            return []
        out = []
        for msg, sentence, _ in self.sentences():
            if not sentence.endswith("?"):
                continue
            first = sentence.split()[0].lower().strip(",") if sentence.split() else ""
            score = 0.98 if first in QUESTION_STARTS else 0.85
            if score < self._threshold():
                continue
            out.append(
                {
                    "id": numeric_id(self.conversation_id, "question", len(out)),
                    "text": sentence,
                    "type": "question",
                    "score": score,
                    "messageIds": [msg.id],
                    "from": self.members[msg.speaker].as_from("userId"),
                }
            )
        return out

    def _commitments(self):
        for msg, sentence, offset in self.sentences():
            if sentence.endswith("?"):
                continue
            lower = " " + sentence.lower() + " "
            definitive = any(" " + p in lower for p in DEFINITIVE)
            if not definitive and not any(" " + p in lower for p in TENTATIVE):
                continue
            yield msg, sentence, offset, definitive

    def _action_like(self, msg: Message, sentence: str, definitive: bool, kind: str, idx: int, score: float):
        entities = date_entities(sentence, self.start_time + timedelta(seconds=msg.time_offset))
        lower = sentence.lower()
        first_person = lower.startswith(("i ", "i'll", "we ", "we'll", "i'm"))
        item: dict[str, Any] = {
            "id": numeric_id(self.conversation_id, kind, idx),
            "text": sentence,
            "type": kind,
            "score": score,
            "messageIds": [msg.id],
            "entities": entities,
            "phrases": action_phrases(sentence),
            "from": self.members[msg.speaker].as_from("userId"),
            "definitive": definitive,
            "assignee": self.members[msg.speaker].as_from() if first_person else {},
        }
        due = self._due_by(msg, entities)
        if due:
            item["dueBy"] = due
        return item

    def _due_by(self, msg: Message, entities: list[dict[str, Any]]) -> str | None:
        for entity in entities:
            if entity["type"] == "date":
                day = resolve_date(entity["text"], self.start_time + timedelta(seconds=msg.time_offset))
                return day.strftime(ISO) + ".000Z"
        return None

    def action_items(self) -> list[dict[str, Any]]:
        if not self.english:
            return []
        out = []
        for msg, sentence, _, definitive in self._commitments():
            score = 0.94 if definitive else 0.8
            if score >= self._threshold():
                out.append(self._action_like(msg, sentence, definitive, "action_item", len(out), score))
        return out

    def follow_ups(self) -> list[dict[str, Any]]:
        if not self.english:
            return []
        out = []
        for msg, sentence, _, definitive in self._commitments():
            lower = sentence.lower()
            if not any(re.search(r"\b" + re.escape(k), lower) for k in FOLLOW_UP):
                continue
            if 0.87 >= self._threshold():
                out.append(self._action_like(msg, sentence, definitive, "follow_up", len(out), 0.87))
        return out

    # -- topics -----------------------------------------------------------------------------------------
    def topics(self, *, sentiment: bool = False, parent_refs: bool = False) -> list[dict[str, Any]]:
        spoken = self.spoken
        if not self.english or not spoken:
            return []
        unigrams: Counter[str] = Counter()
        bigrams: Counter[str] = Counter()
        first_seen: dict[str, int] = {}
        for msg in spoken:
            tokens = [w.lower() for w in _WORD.findall(msg.text)]
            for i, tok in enumerate(tokens):
                if tok in STOPWORDS or len(tok) < 3:
                    continue
                unigrams[tok] += 1
                first_seen.setdefault(tok, len(first_seen))
                if i + 1 < len(tokens):
                    nxt = tokens[i + 1]
                    if nxt not in STOPWORDS and len(nxt) >= 3:
                        bigram = f"{tok} {nxt}"
                        bigrams[bigram] += 1
                        first_seen.setdefault(bigram, len(first_seen))
        vocab = {str(v).lower() for v in self.options.get("customVocabulary") or []}
        order = lambda pc: (-pc[1], -len(pc[0].split()), first_seen[pc[0]])  # noqa: E731
        chosen = sorted(((p, c) for p, c in bigrams.items() if c >= 2 or p in vocab), key=order)[:10]
        words_in_bigrams = {w for b, _ in chosen for w in b.split()}
        chosen += [(p, c) for p, c in unigrams.items() if (c >= 2 or p in vocab) and p not in words_in_bigrams]
        chosen = sorted(chosen, key=order)[:10]
        parents: dict[str, str] = {}
        if parent_refs:
            # Topic hierarchy (symbl-docs topics.md, parentRefs=true example): every parent named in a child's
            # parentRefs is itself a topic of the list. A two-word topic's parent is its head word (last word)
            # when that word is a topic in its own right (seen twice or in customVocabulary).
            texts = {p for p, _ in chosen}
            for phrase in list(texts):
                head = phrase.split()[-1]
                if " " in phrase and (unigrams[head] >= 2 or head in vocab):
                    parents[phrase] = head
                    if head not in texts:
                        texts.add(head)
                        chosen.append((head, unigrams[head]))
            chosen = sorted(chosen, key=order)
        if not chosen:
            return []
        top = max(c for _, c in chosen)
        out = []
        for phrase, count in chosen:
            pattern = re.compile(r"\b" + re.escape(phrase) + r"\b", re.I)
            msgs = [m for m in spoken if pattern.search(m.text)]
            item: dict[str, Any] = {
                "id": numeric_id(self.conversation_id, "topic", phrase),
                "text": phrase,
                "type": "topic",
                "score": round(count / top, 3),
                "messageIds": [m.id for m in msgs],
                "parentRefs": [],
            }
            if phrase in parents:
                item["parentRefs"] = [{"type": "topic", "text": parents[phrase]}]
            if sentiment:
                scores = [sentiment_of(m.text)["polarity"]["score"] for m in msgs] or [0.0]
                item["sentiment"] = _sentiment(sum(scores) / len(scores))
            out.append(item)
        return out

    # -- entities -----------------------------------------------------------------------------------------
    def _entity_hits(self):
        """``(category, type, subType, message, offset, matched text, normalised value)`` per occurrence."""
        custom = self.options.get("entities") or []
        # docs.symbl.ai/docs/entity-detection (newest): "Entities are detected by default when you use the
        # Async API"; the 2022 pages said detectEntities defaults to false. The newest page wins.
        detect = self.options.get("detectEntities", True) is not False
        for msg in self.spoken:
            lower = msg.text.lower()
            for ent in custom:
                needle = str(ent.get("text", "")).lower()
                if needle and (pos := lower.find(needle)) >= 0:
                    kind = str(ent.get("customType"))
                    value = ent.get("value") or ent.get("text")
                    yield "Custom", kind, kind, msg, pos, msg.text[pos : pos + len(needle)], value
            if not detect:
                continue
            for name in self.members:
                if name.lower().startswith("speaker "):
                    continue
                for m in re.finditer(r"\b" + re.escape(name) + r"\b", msg.text, re.I):
                    yield "Managed", "person", "name", msg, m.start(), m.group(0), name
            for m in _NUMBER.finditer(msg.text):
                yield "Managed", "number", "number", msg, m.start(), m.group(0), m.group(0)
            when = self.start_time + timedelta(seconds=msg.time_offset)
            for m in _DATE.finditer(msg.text):
                day = resolve_date(m.group(0), when).strftime("%Y-%m-%d")
                yield "Managed", "date", "date", msg, m.start(), m.group(0), day

    def entities(self, shape: str = "current") -> list[dict[str, Any]]:
        """Detected entities, in the ``current`` shape or the ``legacy`` flat one (see the module docstring)."""
        if not self.options.get("entities") and self.options.get("detectEntities") is False:
            return []
        if shape == "legacy":
            return self._legacy_entities()
        found: dict[tuple, dict[str, Any]] = {}
        for category, kind, sub, msg, offset, text, value in self._entity_hits():
            entity = found.setdefault(
                (category, kind, sub),
                {
                    "id": numeric_id(self.conversation_id, "entity", category, kind, sub),
                    "type": kind,
                    "subType": sub,
                    "category": category,
                    "matches": {},
                },
            )
            match = entity["matches"].setdefault(
                str(value).lower(), {"detectedValue": text, "value": value, "messageRefs": []}
            )
            match["messageRefs"].append(
                {
                    "id": msg.id,
                    "startTime": self._time(msg.time_offset),
                    "endTime": self._time(msg.time_offset + msg.duration),
                    "text": msg.text,
                    "offset": offset,
                }
            )
        return [{**e, "matches": list(e["matches"].values())} for e in found.values()]

    def _legacy_entities(self) -> list[dict[str, Any]]:
        found: dict[tuple, dict[str, Any]] = {}
        for category, kind, _sub, msg, offset, text, value in self._entity_hits():
            if category == "Custom":
                base = {"type": "custom", "customType": kind, "value": value, "text": text}
            else:
                base = {"type": kind, "value": value, "text": text}
            item = found.setdefault((category, kind, str(value).lower()), {**base, "messageRefs": []})
            item["messageRefs"].append({"id": msg.id, "text": msg.text, "offset": offset})
        return list(found.values())

    # -- trackers ----------------------------------------------------------------------------------------
    def trackers(self) -> list[dict[str, Any]]:
        out = []
        insights = [*self.questions(), *self.action_items(), *self.follow_ups()]
        for tracker in self.options.get("trackers") or []:
            if "vocabulary" not in tracker:
                continue
            matches = []
            for phrase in tracker.get("vocabulary") or []:
                pattern = re.compile(r"\b" + re.escape(str(phrase)) + r"\b", re.I)
                refs = [
                    {"id": m.id, "text": m.text, "offset": hit.start()}
                    for m in self.spoken
                    if (hit := pattern.search(m.text))
                ]
                if not refs:
                    continue
                insight_refs = [
                    {"id": i["id"], "type": i["type"], "text": i["text"], "offset": hit.start()}
                    for i in insights
                    if (hit := pattern.search(i["text"]))
                ]
                matches.append(
                    {"type": "vocabulary", "value": phrase, "messageRefs": refs, "insightRefs": insight_refs}
                )
            if matches:
                tracker_id = numeric_id(self.conversation_id, "tracker", tracker["name"])
                out.append({"id": tracker_id, "name": tracker["name"], "matches": matches})
        return out

    # -- analytics -----------------------------------------------------------------------------------------
    def analytics(self) -> dict[str, Any]:
        total = max(self.duration, max((m.time_offset + m.duration for m in self.messages), default=0.0))
        intervals = sorted((m.time_offset, m.time_offset + m.duration) for m in self.messages)
        talk = 0.0
        cur_start = cur_end = None
        for start, end in intervals:
            if cur_end is None or start > cur_end:
                if cur_end is not None:
                    talk += cur_end - cur_start
                cur_start, cur_end = start, end
            else:
                cur_end = max(cur_end, end)
        if cur_end is not None:
            talk += cur_end - cur_start
        silence = max(0.0, total - talk)

        def pct(part: float, whole: float) -> float:
            return round(100.0 * part / whole, 3) if whole > 0 else 0.0

        members = []
        for member in self.members.values():
            own = [m for m in self.messages if m.speaker == member.name]
            seconds = sum(m.duration for m in own)
            words = sum(len(m.text.split()) for m in own)
            item: dict[str, Any] = {"id": member.id, "name": member.name}
            if member.email:
                item["userId"] = member.email
            item.update(
                {
                    "pace": {"wpm": round(words / (seconds / 60.0)) if seconds > 0 else 0},
                    "talkTime": {"percentage": pct(seconds, talk), "seconds": round(seconds, 3)},
                    "listenTime": {
                        "percentage": pct(talk - seconds, talk),
                        "seconds": round(max(0.0, talk - seconds), 3),
                    },
                    "overlap": {},
                }
            )
            members.append(item)
        metrics = [
            {"type": "total_silence", "percent": pct(silence, total), "seconds": round(silence, 3)},
            {"type": "total_talk_time", "percent": pct(talk, total), "seconds": round(talk, 3)},
            {"type": "total_overlap", "percent": 0.0, "seconds": 0.0},
        ]
        return {"metrics": metrics, "members": members}

    # -- summary -------------------------------------------------------------------------------------------
    def summary(self) -> list[dict[str, Any]]:
        if not self.english:
            return []
        picked: list[tuple[Message, str]] = []
        for msg, sentence, _ in self.sentences():
            if sentence.endswith("?"):
                continue
            lower = " " + sentence.lower() + " "
            decision = any(k in lower for k in DECISION) or any(" " + p in lower for p in DEFINITIVE)
            if not picked or decision:
                picked.append((msg, sentence))
            if len(picked) == 5:
                break
        return [
            {"id": numeric_id(self.conversation_id, "summary", i), "text": text, "messageRefs": [{"id": msg.id}]}
            for i, (msg, text) in enumerate(picked)
        ]

    def insights(self) -> list[dict[str, Any]]:
        # Source: symbl-docs insights.md: the legacy endpoint's items are of type "question" or "action_item";
        # follow-ups have their own endpoint and are not repeated here.
        # Its question items carry ``entities`` (an empty list in the example) like the action items do.
        return [*({**q, "entities": []} for q in self.questions()), *self.action_items()]


def sentiment_of(text: str) -> dict[str, Any]:
    words = [w.lower() for w in _WORD.findall(text)]
    pos = sum(w in POSITIVE for w in words)
    neg = sum(w in NEGATIVE for w in words)
    score = (pos - neg) / (pos + neg) if pos + neg else 0.0
    return _sentiment(score)


def _sentiment(score: float) -> dict[str, Any]:
    score = max(-1.0, min(1.0, round(score, 3)))
    suggested = "positive" if score > 0.3 else "negative" if score < -0.3 else "neutral"
    return {"polarity": {"score": score}, "suggested": suggested}


def action_phrases(text: str) -> list[dict[str, str]]:
    lower = text.lower()
    for phrase in (*DEFINITIVE, *TENTATIVE):
        pos = lower.find(phrase)
        if pos >= 0:
            rest = text[pos + len(phrase) :].strip(" ,.!;:")
            rest = re.split(r"[.!?;]", rest)[0].strip()
            if rest:
                return [{"type": "action_phrase", "text": rest}]
    return []


def date_entities(sentence: str, when: datetime) -> list[dict[str, Any]]:
    """Date entities of an action item or follow-up; ``value`` is the resolved day, as in Symbl's example
    (symbl-docs follow-ups.md: text "today" -> value "2020-06-22"), relative to when it was said."""
    return [
        {
            "type": "date",
            "text": m.group(0),
            "offset": m.start(),
            "value": resolve_date(m.group(0), when).strftime("%Y-%m-%d"),
        }
        for m in _DATE.finditer(sentence)
    ]


def resolve_date(word: str, when: datetime) -> datetime:
    word = word.lower()
    day = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if word == "tomorrow":
        return day + timedelta(days=1)
    if word == "yesterday":
        return day - timedelta(days=1)
    if word == "next week":
        return day + timedelta(days=7)
    if word in WEEKDAYS:
        ahead = (WEEKDAYS.index(word) - day.weekday()) % 7 or 7
        return day + timedelta(days=ahead)
    return day
