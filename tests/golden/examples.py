"""Golden examples: Symbl's own example responses, retyped as data, one or more per sandbox endpoint.

Each entry names the page (or SDK type) it was retyped from. Values are the reference's, so formats (ids,
times) can be checked against them; the structural rules (``structure.Rules``) say where the sandbox may
differ and why. ``request`` says how the test gets a comparable response from the sandbox:

* ``path`` placeholders: ``{conversationId}`` (the rich, completed conversation), ``{appendId}`` (a
  conversation to append to), ``{doomedId}`` (one to delete), ``{jobId}`` (a job of the rich one);
* ``body``: ``"mp4"`` (a captioned MP4), ``"audio"`` (bytes sent as audio/wav), ``"url"`` (JSON with a
  loopback media URL), ``"token"`` (the app credentials) or a JSON object;
* ``server``: ``"legacy"`` for the sandbox started with ``--entity-shape legacy``;
* ``auth``: a token to send instead of a valid one (for the documented 401 body).

Sources (abbreviated below):
  [D]  symblai/symbl-docs, docs/<path>.md (published at docs.symbl.ai/docs/<slug>)
  [N]  current docs.symbl.ai pages (readme.io era)
  [GO] symblai/symbl-go-sdk, pkg/api/async/v1/interfaces/types.go
  [PY] PyPI symbl-rest models
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.golden.structure import Rules

CONVERSATION_ID = "5815170693595136"
JOB_ID = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
SENTIMENTS = {"positive", "negative", "neutral"}
JOB_STATUSES = {"scheduled", "in_progress", "completed", "failed"}


@dataclass
class Golden:
    route: tuple[str, str]  # (method, aiohttp canonical path) of the sandbox route it covers
    source: str
    example: Any
    request: dict[str, Any]
    status: int = 200
    rules: Rules = field(default_factory=Rules)
    name: str = ""

    @property
    def id(self) -> str:
        return self.name or f"{self.route[0]} {self.route[1]}"


ASYNC_SUBMIT = {"conversationId": CONVERSATION_ID, "jobId": JOB_ID}
ASYNC_SOURCE = (
    "[D] async-api/overview/{video,audio}/{post,put}-{video,audio}[-url] 'Response' (201); "
    "[PY] AsyncResponse {conversationId, jobId}"
)


def _async(method: str, path: str, body: str, name: str) -> Golden:
    return Golden(
        route=(method, path),
        source=ASYNC_SOURCE,
        example=ASYNC_SUBMIT,
        request={"method": method, "path": path.replace("{conversationId}", "{appendId}"), "body": body},
        status=201,
        name=name,
    )


ASYNC = [
    _async("POST", "/v1/process/video", "mp4", "submit video file"),
    _async("PUT", "/v1/process/video/{conversationId}", "mp4", "append video file"),
    _async("POST", "/v1/process/video/url", "url", "submit video url"),
    _async("PUT", "/v1/process/video/url/{conversationId}", "url", "append video url"),
    _async("POST", "/v1/process/audio", "audio", "submit audio file"),
    _async("PUT", "/v1/process/audio/{conversationId}", "audio", "append audio file"),
    _async("POST", "/v1/process/audio/url", "url", "submit audio url"),
    _async("PUT", "/v1/process/audio/url/{conversationId}", "url", "append audio url"),
]

TOKEN = Golden(
    route=("POST", "/oauth2/token:generate"),
    source="[D] developer-tools/authentication.md (response {accessToken, expiresIn}); the header tables call the "
    "token 'the JWT token you get from our authentication process'",
    example={
        "accessToken": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhcHAifQ.c2lnbmF0dXJl",
        "expiresIn": 86400,
    },
    request={"method": "POST", "path": "/oauth2/token:generate", "body": "token"},
)

JOB = Golden(
    route=("GET", "/v1/job/{jobId}"),
    source="[D] async-api/overview/jobs-api.md; [GO] JobStatus {id, status}",
    example={"id": JOB_ID, "status": "in_progress"},
    request={"method": "GET", "path": "/v1/job/{jobId}"},
    rules=Rules(values={"status": JOB_STATUSES}),
)

MEMBER_ID_FORMATS = {"uuid", "numeric id"}
MEMBER_ID_NOTE = (
    "conversation.md shows numeric member ids, members.md and analytics.md UUIDs: the reference disagrees "
    "with itself; the sandbox uses one UUID per member everywhere"
)

CONVERSATION_OBJECT = {
    "id": "4549300882243584",
    "type": "meeting",
    "name": "4549300882243584",
    "startTime": "2021-07-23T16:31:29.798Z",
    "endTime": "2021-07-23T16:32:20.826Z",
    "members": [
        {"id": "5118221462011904", "name": "John", "email": "John@example.com"},
        {"id": "50123212234535645", "name": "Mary", "email": "Mary@example.com"},
    ],
    "metadata": {"label": "Business"},
}

CONVERSATION = Golden(
    route=("GET", "/v1/conversations/{conversationId}"),
    source="[D] conversation-api/api-reference/conversation.md 'Response'; " + MEMBER_ID_NOTE,
    example=CONVERSATION_OBJECT,
    request={"method": "GET", "path": "/v1/conversations/{conversationId}"},
    rules=Rules(
        exact={"type", "metadata.label"},
        # the example's name is the default (the id); the comparable conversation was given a name
        formats={"members[].id": MEMBER_ID_FORMATS, "name": set()},
        non_empty={"members"},
    ),
)

LIST_CONVERSATIONS = Golden(
    route=("GET", "/v1/conversations"),
    source="[D] conversation-api/api-reference/all-conversations.md 'Response' (members there carry name and "
    "email; conversation.md adds the member id)",
    example={
        "conversations": [
            {
                "id": "4866329603473408",
                "type": "meeting",
                "name": "John / Mary Brainstorming",
                "startTime": "2021-02-27T15:53:05.594Z",
                "endTime": "2021-02-27T16:18:05.048Z",
                "members": [
                    {"name": "John", "email": "john@example.com"},
                    {"name": "Mary", "email": "mary@example.com"},
                ],
                "metadata": {"key": "value", "agentId": "johndoe"},
            }
        ]
    },
    request={"method": "GET", "path": "/v1/conversations", "params": {"filter": "conversation.name==Business*"}},
    rules=Rules(
        exact={"conversations[].type"},
        extra={"conversations[].members[].id", "conversations[].metadata.label"},
        optional={"conversations[].metadata.key", "conversations[].metadata.agentId"},
        non_empty={"conversations", "conversations[].members"},
    ),
)

DELETE = Golden(
    route=("DELETE", "/v1/conversations/{conversationId}"),
    source="[D] conversation-api/api-reference/delete.md",
    example={"message": "successfully deleted the conversation"},
    request={"method": "DELETE", "path": "/v1/conversations/{doomedId}"},
    rules=Rules(exact={"message"}),
)

WORD = {
    "word": "Best",
    "startTime": "2020-08-18T11:10:14.536Z",
    "endTime": "2020-08-18T11:10:15.536Z",
    "score": 0.91,
    "timeOffset": 5.9,
    "duration": 0.2,
}
MESSAGES = Golden(
    route=("GET", "/v1/conversations/{conversationId}/messages"),
    source="[D] conversation-api/api-reference/messages.md 'Response' (verbose=true, sentiment=true); extra "
    "from.id: [D] speaker-separation tutorial and [GO] From{id,name}; words[].speakerTag: [PY] Word and "
    "[GO] Message.Words",
    example={
        "messages": [
            {
                "id": "6412283618000896",
                "text": "Best package for you is $69.99 per month.",
                "from": {"name": "Roger", "email": "Roger@example.com"},
                "startTime": "2020-07-10T11:16:21.024Z",
                "endTime": "2020-07-10T11:16:26.724Z",
                "timeOffset": 5.9,
                "duration": 1,
                "conversationId": "6749556955938816",
                "phrases": [{"type": "action_phrase", "text": "$69.99 per month"}],
                "sentiment": {"polarity": {"score": 0.6}, "suggested": "positive"},
                "words": [WORD],
            }
        ]
    },
    request={
        "method": "GET",
        "path": "/v1/conversations/{conversationId}/messages",
        "params": {"verbose": "true", "sentiment": "true"},
    },
    rules=Rules(
        extra={"messages[].from.id", "messages[].words[].speakerTag"},
        values={"messages[].sentiment.suggested": SENTIMENTS, "messages[].phrases[].type": {"action_phrase"}},
        non_empty={"messages", "messages[].words"},
        # messages.md 'Response Object': timeOffset and duration are seconds "up to 2 decimal points"
        decimals={f"messages[].{w}{k}": 2 for w in ("", "words[].") for k in ("timeOffset", "duration")},
    ),
)

TOPIC = {
    "id": "5907389282779136",
    "text": "interns",
    "type": "topic",
    "score": 0.7178597920690242,
    "messageIds": ["4600982711304192", "5487363432120320"],
}
TOPICS_PARENTS = Golden(
    route=("GET", "/v1/conversations/{conversationId}/topics"),
    name="topics parentRefs=true",
    source="[D] conversation-api/api-reference/topics.md 'Topic Hierarchy Sample Response'",
    example={"topics": [{**TOPIC, "parentRefs": [{"type": "topic", "text": "company-wise hiring"}]}]},
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/topics", "params": {"parentRefs": "true"}},
    rules=Rules(
        exact={"topics[].type", "topics[].parentRefs[].type"},
        non_empty={"topics", "topics[].messageIds"},
    ),
)
TOPICS_SENTIMENT = Golden(
    route=("GET", "/v1/conversations/{conversationId}/topics"),
    name="topics sentiment=true",
    source="[D] conversation-api/api-reference/topics.md 'Sentiment Sample Response'",
    example={
        "topics": [{**TOPIC, "sentiment": {"polarity": {"score": 0.389}, "suggested": "positive"}, "parentRefs": []}]
    },
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/topics", "params": {"sentiment": "true"}},
    rules=Rules(exact={"topics[].type", "topics[].parentRefs"}, values={"topics[].sentiment.suggested": SENTIMENTS}),
)

QUESTIONS = Golden(
    route=("GET", "/v1/conversations/{conversationId}/questions"),
    source="[D] conversation-api/api-reference/questions.md 'Response'",
    example={
        "questions": [
            {
                "id": "6673386714431488",
                "text": "Does it have speakers?",
                "type": "question",
                "score": 0.9844425742283145,
                "messageIds": ["5561105242914816"],
                "from": {"id": "47c74881-6475-433f-a13a-52152a3cb5aa", "name": "Surbhi", "userId": "Surbhi@symbl.ai"},
            }
        ]
    },
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/questions"},
    rules=Rules(exact={"questions[].type"}, non_empty={"questions"}),
)

PERSON_ENTITY = {"type": "person", "text": "Vikram", "offset": 0, "value": {"assignee": True, "name": "Vikram"}}
DATE_ENTITY = {"type": "date", "text": "today", "offset": 28, "value": "2020-06-22"}
DATE_ENTITY_NOTE = (
    "date entities: {type, text, offset, value: resolved day} as in [D] entities.md 'Date Entity' and the "
    "2022 follow-ups.md example (value '2020-06-22'); a later follow-ups.md revision shows start/end on a "
    "'date' entity instead, which the sandbox does not copy"
)
ACTION_ITEMS = Golden(
    route=("GET", "/v1/conversations/{conversationId}/action-items"),
    source="[D] conversation-api/api-reference/action-items.md 'Response'; dueBy: [D] insights.md and "
    "[GO] ActionItem.DueBy; " + DATE_ENTITY_NOTE,
    example={
        "actionItems": [
            {
                "id": "4567077831573504",
                "text": "Vikram you need to work on figuring out a plan.",
                "type": "action_item",
                "score": 0.9456050585275944,
                "messageIds": ["4854542482014208"],
                "entities": [PERSON_ENTITY, DATE_ENTITY],
                "phrases": [{"type": "action_phrase", "text": "make this hackathon work for our customers first"}],
                "from": {"id": "c99e7baf-8d9c-4668-ae08-6bd3384bc642", "name": "Surbhi", "userId": "surbhi@symbl.ai"},
                "definitive": True,
                "assignee": {"name": "Vikram"},
                "dueBy": "2020-07-11T07:00:00.000Z",
            }
        ]
    },
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/action-items"},
    rules=Rules(
        exact={"actionItems[].type"},
        # assignee is {} when nobody is assigned ([D] follow-ups.md shows "assignee": {}); the speaker id in
        # it comes from [GO] ActionItem.Assignee{id, name}, its e-mail from [D] insights.md
        optional={"actionItems[].dueBy", "actionItems[].assignee.name"},
        extra={"actionItems[].assignee.id", "actionItems[].assignee.email"},
        non_empty={"actionItems", "actionItems[].entities"},
    ),
)

FOLLOW_UPS = Golden(
    route=("GET", "/v1/conversations/{conversationId}/follow-ups"),
    source="[D] conversation-api/api-reference/follow-ups.md 'Response'; phrases: its 'Response Object' table; "
    "definitive: [GO] FollowUp.Definitive; " + DATE_ENTITY_NOTE,
    example={
        "followUps": [
            {
                "id": "4526427164639111",
                "text": "We need to have the meeting today, and we're going to talk about a product strategy.",
                "type": "follow_up",
                "score": 0.8660254037851491,
                "messageIds": ["4675554024357888"],
                "entities": [DATE_ENTITY, {"type": "person", "text": "Richard Holmes", "offset": 110, "value": {}}],
                "from": {},
                "assignee": {},
                "dueBy": "2020-06-22T07:00:00.000Z",
            }
        ]
    },
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/follow-ups"},
    rules=Rules(
        exact={"followUps[].type"},
        optional={"followUps[].dueBy"},
        extra={
            "followUps[].phrases",
            "followUps[].definitive",
            "followUps[].from.id",
            "followUps[].from.name",
            "followUps[].from.userId",
            "followUps[].assignee.id",
            "followUps[].assignee.name",
            "followUps[].assignee.email",
        },
        non_empty={"followUps", "followUps[].entities"},
    ),
)

ENTITIES_CURRENT = Golden(
    route=("GET", "/v1/conversations/{conversationId}/entities"),
    name="entities (current shape)",
    source="[N] docs.symbl.ai/docs/get-detected-entities (fields id, type, subType, category Custom|Managed, "
    "matches); [GO] Entity/EntityMatch{detectedValue, messageRefs}/MessageRef{id, startTime, endTime, text, "
    "offset}. The [N] field table calls the match value 'matches.value', [GO] 'detectedValue': the "
    "reference disagrees with itself and the sandbox sends both (value: normalised, dates resolved)",
    example={
        "entities": [
            {
                "id": "4476908732794496",
                "type": "Vehicle",
                "subType": "TeslaModel",
                "category": "Custom",
                "matches": [
                    {
                        "detectedValue": "Model X",
                        "messageRefs": [
                            {
                                "id": "5118221462011904",
                                "startTime": "2020-07-10T11:16:21.024Z",
                                "endTime": "2020-07-10T11:16:26.724Z",
                                "text": "I drove the Model X today.",
                                "offset": 12,
                            }
                        ],
                    }
                ],
            }
        ]
    },
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/entities"},
    rules=Rules(
        values={"entities[].category": {"Custom", "Managed"}},
        extra={"entities[].matches[].value"},
        non_empty={"entities", "entities[].matches", "entities[].matches[].messageRefs"},
    ),
)

LEGACY_ENTITY_REF = {"id": "5979280332816384", "text": "The name is Jamie Smith.", "offset": 12}
ENTITIES_LEGACY = Golden(
    route=("GET", "/v1/conversations/{conversationId}/entities"),
    name="entities (legacy shape, --entity-shape legacy)",
    source="[D] conversation-api/api-reference/entities.md 'Response' tabs (Custom, Person, Date, Number)",
    example={
        "entities": [
            {
                "type": "custom",
                "customType": "Company Executives",
                "value": "marketing director",
                "text": "marketing director",
                "messageRefs": [LEGACY_ENTITY_REF],
            },
            {"type": "person", "value": "jamie smith", "text": "jamie smith", "messageRefs": [LEGACY_ENTITY_REF]},
            {"type": "date", "value": "2020-07-15", "text": "today", "messageRefs": [LEGACY_ENTITY_REF]},
            {"type": "number", "value": "two", "text": "two", "messageRefs": [LEGACY_ENTITY_REF]},
        ]
    },
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/entities", "server": "legacy"},
    rules=Rules(non_empty={"entities", "entities[].messageRefs"}),
)

TRACKERS_EXAMPLE = [
    {
        "id": "5237067555536896",
        "name": "PricingMention",
        "matches": [
            {
                "type": "vocabulary",
                "value": "Can you reiterate that one more time",
                "messageRefs": [{"id": "6428676305453056", "text": "Give that intent and name.", "offset": -1}],
                "insightRefs": [
                    {
                        "text": "So from sentiment analysis perspective, right?",
                        "offset": -1,
                        "type": "question",
                        "id": "5794360651153408",
                    }
                ],
            }
        ],
    }
]
TRACKERS_SOURCE = (
    "[D] conversation-api/api-reference/trackers.md 'Response' (a match object) inside the documented "
    "top-level array of {id, name, matches}"
)
TRACKERS_RULES = dict(
    exact={"[].matches[].type"},
    values={"[].matches[].insightRefs[].type": {"question", "action_item", "follow_up"}},
    non_empty={"", "[].matches", "[].matches[].messageRefs", "[].matches[].insightRefs"},
)
TRACKERS_DETECTED = Golden(
    route=("GET", "/v1/conversations/{conversationId}/trackers-detected"),
    source=TRACKERS_SOURCE,
    example=TRACKERS_EXAMPLE,
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/trackers-detected"},
    rules=Rules(**TRACKERS_RULES),
)
TRACKERS_OLD = Golden(
    route=("GET", "/v1/conversations/{conversationId}/trackers"),
    source=TRACKERS_SOURCE + "; trackers.md calls this path the deprecated old endpoint ([PY] and [GO] use it)",
    example=TRACKERS_EXAMPLE,
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/trackers"},
    rules=Rules(**TRACKERS_RULES),
)

ANALYTICS = Golden(
    route=("GET", "/v1/conversations/{conversationId}/analytics"),
    source="[D] conversation-api/api-reference/analytics.md 'Response'; its note: overlap 'would be empty' for "
    "Async API conversations, so overlapDuration/overlappingMembers may be absent",
    example={
        "metrics": [{"type": "total_silence", "percent": 29.061, "seconds": 23.432}],
        "members": [
            {
                "id": "acc63fbe-c3cd-4daa-8ab0-b088142e5a0f",
                "name": "Speaker 1",
                "userId": "abc@symbl.ai",
                "pace": {"wpm": 68},
                "talkTime": {"percentage": 40.912, "seconds": 23.401},
                "listenTime": {"percentage": 59.088, "seconds": 33.798},
                "overlap": {
                    "overlapDuration": 31.5,
                    "overlappingMembers": [
                        {
                            "id": "a52def45-be6e-484f-908b-9ac66eaecabb",
                            "name": "Speaker 2",
                            "userId": "abcd@symbl.ai",
                            "percent": 61.58,
                            "seconds": 24.94,
                        }
                    ],
                },
            }
        ],
    },
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/analytics"},
    rules=Rules(
        values={"metrics[].type": {"total_silence", "total_talk_time", "total_overlap"}},
        optional={"members[].overlap.overlapDuration", "members[].overlap.overlappingMembers"},
        non_empty={"metrics", "members"},
    ),
)

SUMMARY = Golden(
    route=("GET", "/v1/conversations/{conversationId}/summary"),
    source="[D] conversation-api/api-reference/summary.md 'Response Body Sample'",
    example={
        "summary": [
            {
                "id": "3498579583479",
                "text": "John, Mark and Paul need to focus more on the Dev team and on the product.",
                "messageRefs": [{"id": "248594875984"}, {"id": "948538959348"}],
            }
        ]
    },
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/summary"},
    rules=Rules(non_empty={"summary", "summary[].messageRefs"}),
)

MEMBERS = Golden(
    route=("GET", "/v1/conversations/{conversationId}/members"),
    source="[D] conversation-api/api-reference/members.md 'Response'",
    example={"members": [{"id": "fc9b35cd-361f-41c6-9029-0944d21c7150", "name": "John", "email": "john@example.com"}]},
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/members"},
    rules=Rules(non_empty={"members"}),
)

INSIGHTS = Golden(
    route=("GET", "/v1/conversations/{conversationId}/insights"),
    source="[D] conversation-api/api-reference/insights.md 'Response' (type question or action_item; the "
    "question item has entities []); definitive, phrases, from.id: as on the per-type pages (action-items.md, "
    "questions.md)",
    example={
        "insights": [
            {
                "id": "5153013504749568",
                "text": "Salesman will send the quote to the customer by tomorrow.",
                "type": "action_item",
                "score": 1,
                "messageIds": ["4679932491333632"],
                "entities": [PERSON_ENTITY, DATE_ENTITY],
                "from": {"name": "Customer", "userId": "customer@email.com"},
                "assignee": {"name": "Salesman", "email": "sales@email.com"},
                "dueBy": "2020-07-11T07:00:00.000Z",
            },
            {
                "id": "5642466493464576",
                "text": "I think what is the Bahamas?",
                "type": "question",
                "score": 0.9119608386876195,
                "messageIds": ["5114878444437504"],
                "entities": [],
            },
        ]
    },
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/insights"},
    rules=Rules(
        values={"insights[].type": {"question", "action_item"}},
        optional={"insights[].dueBy", "insights[].assignee.name", "insights[].assignee.email"},
        extra={
            "insights[].definitive",
            "insights[].phrases",
            "insights[].from",
            "insights[].from.id",
            "insights[].assignee.id",
        },
        non_empty={"insights"},
    ),
)

EXPERIENCE = Golden(
    route=("POST", "/v1/conversations/{conversationId}/experiences"),
    source="[D] api-reference/experience-api/post-text-summary-ui.md 'Response for verbose-text-summary'; "
    "[GO] SummaryUIResult {name, url}",
    example={
        "name": "verbose-text-summary",
        "url": "https://meetinginsights.symbl.ai/meeting/#/eyJzZXNzaW9uSWQiOiI0NTMyNTY2NDc2NDU1OTM2In0=",
    },
    request={
        "method": "POST",
        "path": "/v1/conversations/{conversationId}/experiences",
        "body": {"name": "verbose-text-summary", "readOnly": True},
    },
    rules=Rules(exact={"name"}),
)

UNAUTHORIZED = Golden(
    route=("GET", "/v1/conversations/{conversationId}/messages"),
    name="401 without a valid token",
    source="[D] developer-tools/errors.md: the documented 401 body for an incorrect auth token",
    example={"message": "Token validation failed for provided token."},
    request={"method": "GET", "path": "/v1/conversations/{conversationId}/messages", "auth": "bogus"},
    status=401,
    rules=Rules(exact={"message"}),
)

DELETE_UNKNOWN = Golden(
    route=("DELETE", "/v1/conversations/{conversationId}"),
    name="DELETE unknown conversation",
    source="[D] conversation-api/api-reference/delete.md (body for an invalid id; the page states no status "
    "code, the sandbox answers 404)",
    example={"message": "The conversationId is either invalid or does not exist."},
    request={"method": "DELETE", "path": "/v1/conversations/1234567890123456"},
    status=404,
    rules=Rules(exact={"message"}),
)

GOLDEN: list[Golden] = [
    TOKEN,
    *ASYNC,
    JOB,
    LIST_CONVERSATIONS,
    CONVERSATION,
    DELETE,
    DELETE_UNKNOWN,
    UNAUTHORIZED,
    MESSAGES,
    TOPICS_PARENTS,
    TOPICS_SENTIMENT,
    QUESTIONS,
    ACTION_ITEMS,
    FOLLOW_UPS,
    ENTITIES_CURRENT,
    ENTITIES_LEGACY,
    INSIGHTS,
    TRACKERS_DETECTED,
    TRACKERS_OLD,
    ANALYTICS,
    SUMMARY,
    MEMBERS,
    EXPERIENCE,
]

#: What the sandbox sends (not a route): the job-status webhook body.
WEBHOOK = Golden(
    route=("POST", "<webhookUrl>"),
    name="webhook body",
    source="[D] async pages 'Using Webhook' table: {jobId, status}; the payloads actually received in [D] "
    "post-audio.md (2022-04 revision) and the Symbl blog on webhooks use 'id': the reference disagrees with "
    "itself and the sandbox sends both",
    example={"jobId": JOB_ID, "status": "in_progress"},
    request={},
    rules=Rules(extra={"id"}, values={"status": JOB_STATUSES}, formats={"id": {"uuid"}}),
)

#: Sandbox routes that are not part of Symbl's API, or not JSON: the reason is the exemption.
EXEMPT: dict[tuple[str, str], str] = {
    ("GET", "/meeting/{token}"): "the HTML summary page an Experience API URL points to (Symbl hosts it on "
    "meetinginsights.symbl.ai); checked in tests/sandbox/test_sandbox_experience.py",
}
