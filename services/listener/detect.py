"""Spot the song a social post names, in two steps: propose candidate (artist, title) spans, then confirm
or rank them.

1. Propose. Every form people use gives candidates: "Artist - Title" with any dash, "//" or "|";
   quotes of every kind; "“Title” by Artist" (also "de", "von"); possessives ("Artist's new single 'X'");
   "New from Artist: X"; "Artist shares “X”"; "this Artist song 'X'"; "Premiere:", "Listen:", "RT @user:",
   "#np", "♪", "🎶" cues; trailing chatter ("is unreal", "on loop", ". That's it") and version brackets
   ((Live), (feat. ...), [Remix]) are cut off; links to Spotify, Apple Music, YouTube, Bandcamp and
   SoundCloud count as music cues.
2. Confirm. Each candidate gets a plausibility score from the cues around it (a music cue, quotes, a
   capitalised name, nothing that reads like sport, schedules, travel or prices), and one lookup through
   the song providers (the offline catalog; optionally Spotify or MusicBrainz behind the cache, see
   confirm.py). A confirmed song wins; otherwise the plausibility score decides. A provider that fails
   leaves the plausibility score alone: nothing is lost.

Precision matters more than recall: every false positive costs a generation and a curator's time. So
hard vetoes (scores, times, dates, lists of three or more, podcasts, books, films, albums) hold even for a
song the catalog knows (only a word like "News" inside a confirmed title is let through: "Good News"),
and a post with two different songs, neither clearly ahead, names none.

The weights below were tuned on data/detection/dev.jsonl; bench/detect.py reports the test split.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from deephype.listener.confirm import Confirmation, SongLookup, Verdict, offline_lookup

if TYPE_CHECKING:
    from deephype.listener.span_scorer import SpanScorer

__all__ = ["Candidate", "Detection", "Explanation", "Readings", "SongDetector", "detect_song"]


class Detection(BaseModel):
    """What detection found. artist and title are both None when no song is named."""

    artist: str | None = None
    title: str | None = None
    spotify_track_id: str | None = None
    confidence: float = Field(default=0.0, ge=0, le=1)


@dataclass
class Candidate:
    """One (artist, title) reading of a post, with everything that decided its fate."""

    artist: str
    title: str
    form: str  # which form proposed it
    quoted: bool
    clause: int  # which clause of the post it came from
    plausibility: float = 0.0
    reasons: list[str] = field(default_factory=list)
    veto: str | None = None  # why it can never win
    confirmation: Confirmation | None = None
    score: float = 0.0  # plausibility, raised by a confirmation
    bare: bool = False  # the clause is this credit and nothing else ("Taylor Swift – cardigan")
    plausibility_penalty: float = 0.0  # what the form itself found against it
    comma_tail: bool = False  # the unquoted title went on after a comma: "oat milk, bread, regret"
    # A shorter reading of a rule's candidate, proposed for the span scorer only (see _widen):
    variant: bool = False
    title_words_cut: int = 0  # words cut off the end of the rule's title
    artist_words_cut: int = 0  # words cut off the start of the rule's artist
    next_word: str = ""  # the first word cut off the title
    probability: float | None = None  # the span scorer's, when it ranked this candidate

    @property
    def key(self) -> tuple[str, str]:
        return _key(self.artist), _key(self.title)


@dataclass
class Explanation:
    detection: Detection
    candidates: list[Candidate]  # what the rules proposed
    decision: str  # why the winner won, or why nothing was kept
    readings: list[Candidate] = field(default_factory=list)  # the shorter readings proposed for the scorer


@dataclass
class Readings:
    """A post as the span scorer sees it (SongDetector.readings)."""

    ruled: Explanation  # the rules' own decision, with their candidates
    widened: list[Candidate]  # the shorter readings proposed for the scorer
    eligible: list[Candidate]  # the readings that may win: no veto of the rules
    features: list[list[float]]  # span_scorer.FEATURES of each eligible reading
    not_a_song: bool  # the post says it is about a book, a film, a match ...: no reading wins
    on_demand: bool = False  # the post is addressed to the bot


# --- links ---------------------------------------------------------------------------------------------

SPOTIFY_TRACK = re.compile(
    r"(?:open\.spotify\.com/(?:intl-[a-z]{2,5}/)?(?:embed/)?track/|spotify:track:)([A-Za-z0-9]{22})(?![A-Za-z0-9])"
)
URL = re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9.-]+\.(?:com|be|fm|io|ly|co|net|org|to)/\S*|spotify:\w+:\w+", re.I)
MUSIC_LINK = re.compile(
    r"spotify\.com|spotify:|music\.apple\.com|youtube\.com|youtu\.be|bandcamp\.com|soundcloud\.com|tidal\.com"
    r"|deezer\.com|\.lnk\.to|song\.link|odesli\.co",
    re.I,
)

# --- characters ----------------------------------------------------------------------------------------

DASHES = r"\-–—‒−"  # for use inside a [character class]
# A separator is a dash (or two) with space around it; "9-5", "Jay-Z" and "2024-05-01" are not.
DASH_SEPARATOR = re.compile(rf"\s+[{DASHES}]{{1,2}}\s+")
# "//" and "|" separate artist and title only in a clause without a dash; next to a dash they end a clause.
ANY_SEPARATOR = re.compile(rf"\s+(?:[{DASHES}]{{1,2}}|//|\|)\s+")
OPEN_QUOTES = "\"'“‘«„‚»「『"
CLOSE_QUOTES = "\"'”’»“‘«」』"
QUOTE_CHARS = re.compile(f"[{re.escape(OPEN_QUOTES + CLOSE_QUOTES)}]")
POSSESSIVE_S = re.compile(r"\w['’]s\s")
# Each opening quote with its own closing ones, so "“Stayin' Alive”" keeps its apostrophe.
QUOTE_PAIRS = (("“", '”"'), ('"', '"”'), ("‘", "’"), ("'", "'"), ("«", "»"), ("»", "«"), ("„", "“”"), ("‚", "‘’"))
QUOTE_PAIRS += (("「", "」"), ("『", "』"))
QUOTED = re.compile(
    rf"(?:(?<=^)|(?<=[\s(\[:{DASHES}]))(?:"
    + "|".join(rf"{re.escape(o)}\s?([^{re.escape(c)}\n]{{1,100}}?)\s?[{re.escape(c)}]" for o, c in QUOTE_PAIRS)
    + rf")(?=$|[\s.,!?;:)\]{DASHES}]|[^\w\s])"
)

# --- cues ----------------------------------------------------------------------------------------------

STRONG_CUE = re.compile(
    r"#(?:np|nowplaying|nowlistening|nowspinning|currentlyplaying|songoftheday|sotd|newmusic)\b"
    r"|\bnow\s+(?:playing|listening(?:\s+to)?|spinning)\b|\bnp\s*:|\blistening\s+to\b|\bcurrently\s+playing\b"
    r"|\bon\s+(?:repeat|loop)\b|\bin\s+loop\b|\ben\s+boucle\b|\bläuft\s+gerade\b|\bescuchando\b|\bouvindo\b"
    r"|\bahora\s+mismo\s*:|今聴いてる|\bj'écoute\b"
    r"|^\s*(?:premiere|listen|new\s+(?:single|track|song|music)|song\s+of\s+the\s+(?:day|week)"
    r"|track\s+of\s+the\s+(?:day|week)|best\s+new\s+track)\s*(?::|//|\||-)",
    re.I | re.M,
)
CUE_PREFIX = re.compile(
    r"#(?:np|nowplaying|nowlistening|nowspinning|currentlyplaying)\b\s*:?"
    r"|\b(?:now\s+playing|np|now\s+listening(?:\s+to)?|on\s+repeat|en\s+boucle|läuft\s+gerade|ahora\s+mismo"
    r"|ouvindo|今聴いてる)\s*[:：]",
    re.I,
)
MUSIC_CUE = re.compile(
    r"\b(?:new\s+(?:single|song|track|music|video|ep|album)|single|songs?|tracks?|tunes?|listen\w*"
    r"|banger|jams?|remix|music\s+video|playlist|spotify|bandcamp|soundcloud|apple\s+music|premiere\w*"
    r"|sotd|songoftheday|newmusic|nowlistening|music|spinning|playing|chorus|bridge|verse|lyrics|vocals?"
    r"|intro|outro|solo|no\s+skips|earworm|stuck\s+in\s+my\s+head|clip\s+officiel|official\s+(?:video|audio))\b"
    r"|[🎵🎶🎧🎸🎤🎹🥁🎷🎺🎻📻💿📀♪♫♬]",
    re.I,
)
# Talk that shares the "A - B" shape with songs: games, schedules, streams, travel, money.
OFF_TOPIC = re.compile(
    r"\b(?:vs\.?|v\.|game|match|kick-?off|score[sd]?|half-?time|full-?time|ft\s*:|league|derby|goals?"
    r"|playoffs?|nba|nfl|nhl|mlb|fc|innings?|quarter|overtime|tonight'?s\s+game|q\s*&\s*a|ama"
    r"|live\s*now|livestream|live\s+stream|stream(?:ing)?\s+(?:now|starts?)|webinar|meeting"
    r"|open(?:ing)?\s+hours|office\s+hours|price[sd]?|sale|discount|off\b|deadline|lineup|flight"
    r"|itinerary|tickets?|def\.|earnings|revenue|results|ratings|moves)\b"
    r"|\s@\s|\bw/\s",  # tour dates: "June 14 - Dallas, TX @ The Venue w/ Support"
    re.I,
)
# Sport and travel emoji: a weaker sign than the words, since people decorate songs with any emoji.
OFF_TOPIC_EMOJI = re.compile(r"[⚽🏀🏈⚾🎾🏉🏒✈🚆]")
WEEKDAY_OR_MONTH = (
    r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?"
    r"|jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|today|tomorrow|tonight|noon|midnight"
)
CALENDAR_SIDE = re.compile(rf"^(?:{WEEKDAY_OR_MONTH})\.?(?:\s+\d.*)?$", re.I)
CALENDAR_WORD = re.compile(rf"\b(?:{WEEKDAY_OR_MONTH})\b", re.I)
DAY_AND_MONTH = re.compile(
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{WEEKDAY_OR_MONTH})\b|\b(?:{WEEKDAY_OR_MONTH})\.?\s+\d{{1,2}}\b", re.I
)
# Never a song, even after "listening to": podcasts, talks, the news, books, films, games; album posts.
NOT_A_SONG = re.compile(
    r"\b(?:podcast|episode|audiobook|audio\s*book|lecture|sermon|interview|webinar|news|radio\s+show"
    r"|full\s+album|album\s+review|(?<!track\s)(?<!song\s)(?<!single\s)review|tracklist|setlist|book|novel|reading|read|nowreading|film|movie"
    r"|documentary|memoir|biography|autobiography|poem|poetry|ballet|nowwatching|watching|season\s+\d|exhibition|painting|gaming|playthrough|hours\s+in"
    r"|act\s+\d|boss\s+rush|speedrun|recipe|thread|essay|quote)\b"
    r"|[📚📖🎬🍿🎮🎲🧵]",
    re.I,
)
NEWS_WORDS = re.compile(
    r"\b(?:tour|tours|touring|dates|turns\s+\d+|anniversary|lawsuit|interview|announces?|announced|tickets?"
    r"|reissue|documentary|awards?|festival|hiatus|rumou?rs?|source|says|after|over|about)\b",
    re.I,
)
MUSIC_VIDEO = re.compile(r"\b(?:video|clip|mv)\b", re.I)
ALBUM_WORDS = re.compile(r"\b(?:album|ep|lp|mixtape|record)\b", re.I)
SONG_WORDS = re.compile(r"\b(?:song|single|track|tune|banger|jam)s?\b", re.I)
# "taken from the new album", "from new album Shade": a song from an album, not an album post.
FROM_AN_ALBUM = re.compile(
    r"\b(?:taken\s+from|from|off)\s+(?:the\s+|their\s+|her\s+|his\s+)?(?:new\s+|upcoming\s+|forthcoming\s+"
    r"|debut\s+|latest\s+)*(?:album|ep|lp|record)\b",
    re.I,
)
ALBUM_IN_TITLE = re.compile(r"[(\[]\s*(?:album|ep|lp|mixtape|full\s+album|\d+\s+tracks?)\s*[)\]]", re.I)
QUESTION_WORD = re.compile(r"who|what|which|anyone|anybody|someone|somebody|everyone|nobody|they", re.I)
DETERMINER_START = re.compile(r"^(?:a|an|my|your|his|her|our|their|some|this|that|these|those)\s")
COUNTER_START = re.compile(
    r"^(?:chapter|day|week|step|part|episode|ep|vol|volume|season|page|pages|lesson|round|level|version|v)\s*\d",
    re.I,
)
TIME_OR_NUMBER = re.compile(
    r"\d{1,2}[:.]\d{2}|\b\d{1,2}\s*(?:am|pm)\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b|^(?=\D*\d)[\d\s.,:/%$€£+x×-]+(?:am|pm|st|nd|rd|th|k|m|kg|km|h|hrs?|mins?|s|x)?$"
    r"|\d+\s*(?:[%°£$€]|(?:kg|km|hours?|mins?|minutes?|days?|nights?|weeks?|months?|years?|shows?|dates)\b)",
    re.I,
)
# Stock openers of posts about anything ("hot take - ...", "PSA - ...", "new phone - who dis"): no artist.
POST_OPENER = re.compile(
    r"^(?:hot\s+takes?|unpopular\s+opinion|fun\s+fact|psa|reminder|friendly\s+reminder|daily\s+reminder"
    r"|(?:life\s+|quick\s+|small\s+|big\s+)?(?:update|news)|plot\s+twist|note\s+to\s+self|pro\s+tip|tip|tfw|mfw"
    r"|pov|ngl|tbh|current\s+(?:mood|status|situation)|mood|status|breaking|spoiler(?:\s+alert)?|confession"
    r"|true\s+story|new\s+phone|also\s+me|me|reality|expectation|goals?|lesson\s+learned|hack|life\s+hack"
    # shop signs and a band's own business: "Closed - Back Monday", "Soundcheck - Tokyo", "Merch drop - Friday"
    r"|closed|open|sold\s+out|cancel+ed|postponed|sale|black\s+friday|cyber\s+monday|soundcheck|rehearsals?"
    r"|studio(?:\s+update)?|merch(?:\s+drop)?|tour(?:\s+diary)?|giveaway|contest|announcement)$",
    re.I,
)
# A side that is only a call to action or a pointer is not a title: "Listen to 'X' - below", "- Enjoy!"
NOT_A_TITLE = re.compile(
    r"^(?:below|above|here|now|link|links|this|that|it|enjoy|thanks|listen|watch|stream|download|more|tickets"
    r"|link\s+in\s+bio|check\s+it\s+out|out\s+now|coming\s+soon|soon|tbc|tba|premiere|official\s+video)$",
    re.I,
)
# Cities, countries and teams: "London - Paris", "Ireland - New Zealand". Both sides only such words: no song.
_PLACE_WORDS = (
    "london paris berlin warsaw prague vienna rome florence venice milan madrid barcelona lisbon porto "
    "dublin amsterdam brussels copenhagen stockholm oslo helsinki moscow istanbul athens tokyo kyoto "
    "osaka seoul beijing shanghai hong kong singapore sydney melbourne auckland new york nyc la los "
    "angeles san francisco chicago boston miami seattle toronto montreal vancouver mexico city lyon "
    "marseille munich hamburg frankfurt manchester liverpool glasgow edinburgh cardiff belfast leeds "
    "bristol heathrow gatwick jfk ireland england scotland wales france germany spain italy portugal "
    "japan china india brazil argentina usa uk canada australia zealand egypt kenya nigeria south africa "
    "lakers celtics warriors suns chiefs bills arsenal chelsea spurs tottenham everton real juventus "
    "bayern psg"
)
PLACE_WORDS = frozenset(_PLACE_WORDS.split())

# --- versions and credits that are not part of the title ------------------------------------------------

VERSION_WORDS = (
    r"remix|rmx|mix|edit|version|live|remaster(?:ed)?|official|video|audio|lyrics?|visuali[sz]er|acoustic"
    r"|demo|instrumental|feat\.?|ft\.?|featuring|prod\.?|produced|explicit|clean|mono|stereo|hd|hq|4k"
    r"|session|sessions|unplugged|bonus\s+track|dub|rework|bootleg|cover|extended|original|clip|officiel"
    r"|recordings|records|music|premiere|ost|soundtrack"
)
# "(X Remix)", "[Official Video]", "(Live at Wembley)", "(feat. Y)", "[XL Recordings]" at the end.
BRACKET_VERSION = re.compile(rf"\s*[(\[][^()\[\]]*\b(?:{VERSION_WORDS})\b[^()\[\]]*[)\]]\s*$", re.I)
# A label or catalogue tag in square brackets at the end: "[Planet Mu]", "[Hyperdub]".
LABEL_BRACKET = re.compile(r"\s*\[[^\[\]]{1,30}\]\s*$")
# A lowercase aside in brackets at the end: "(the intro!!!)", "(20 minutes well spent)", "(literally)".
ASIDE_BRACKET = re.compile(r"\s*\((?=[a-z0-9])(?![A-Z])[^()]*[a-z][^()]*\)?\s*$")
# "- Radio Edit", "- Live at Wembley", "- 2011 Remaster", "- X Remix" at the end (the version word last,
# so "Lana Del Rey - Video Games" keeps its title).
DASH_VERSION_WORDS = (
    r"remix|rmx|mix|edit|version|remaster(?:ed)?|acoustic|demo|instrumental|mono|stereo|unplugged|rework|bootleg|dub"
)
DASH_VERSION = re.compile(
    rf"\s+(?:[{DASHES}]{{1,2}}|\|)\s+(?:(?:[\w&'.]+\s+){{0,4}}(?:{DASH_VERSION_WORDS})(?:\s+(?:19|20)\d\d)?"
    rf"|live(?:\s+(?:at|from|in|on)\s+[^{DASHES}]{{1,60}})?|official\s+(?:music\s+)?(?:video|audio)|premiere"
    rf"|out\s+now|link\s+in\s+bio)\s*$",
    re.I,
)
BRACKET_VERSION_ANYWHERE = re.compile(rf"\s*[(\[][^()\[\]]*\b(?:{VERSION_WORDS})\b[^()\[\]]*[)\]]", re.I)
FEATURING = re.compile(r"\s+(?:\(|\[)?(?:feat\.?|ft\.?|featuring|with\s+special\s+guest)\s.*$", re.I)

# What a post says after a title that is not part of it.
TITLE_TAIL = re.compile(
    # lowercase only: in "Odds Are Good" and "There Are A Thousand" the words belong to the title
    r"\s+(?:(?-i:(?:is|are)\s+(?:SO|SUCH)\b)|(?-i:(?:is|are)\s+(?:out|here|live|a|an|such|so|the|my|still|on|now|just|amazing|incredible|great"
    r"|good|fire|perfect|beautiful|gorgeous|stunning|everything|brilliant|lovely|unreal|stuck|a\s+vibe))\b"
    r"|out\s+now|on\s+(?:spotify|youtube|repeat|bandcamp|apple\s+music|soundcloud|tidal|deezer|loop)|in\s+loop"
    r"|via\b|off\s+(?:the|their|his|her|my|this|that)\b|from\s+(?:the|their|his|her)\b|available\b"
    r"|(?-i:on\s+(?:a|the|my|this|an))\b|never\s+gets\s+old|hits\s+different|slaps|goes\s+(?:so\s+)?hard"
    r"|what\s+a\b|(?-i:right\s+now)|(?-i:today)\b|(?-i:at\s+(?:\d\w*|night|midnight|dawn|every|the))\b"
    r"|(?-i:tonight)\b|this\s+(?:morning|evening|week)|all\s+day|(?-i:and\s+(?:it|i|we|i'm))\b|because\b|cause\b"
    r"|made\s+me\b|got\s+me\b|will\s+never\b|(?-i:please|pls|plz|thanks|thank\s+you|lol|lmao)\b|still\s+(?:hits|sounds|slaps)|/\s+(?-i:[a-z])|🔥"
    # lowercase only: "bags for the 400th time", "Shameika every day of my life", "X way too loud"
    r"|(?-i:for\s+the\s+(?:\w+\s+)?time|every\s+(?:single\s+)?(?:day|night|morning|time|week)|way\s+too"
    r"|deserves?|might\s+be|may\s+be|could\s+be|live\s+(?:was|is))\b)",
    re.I,
)
# What a post says before an artist: "Can't stop playing Radiohead - Creep".
LEAD_IN = re.compile(
    r"^.*?\b(?:playing|listening\s+to|listen\s+to|spinning|blasting|hearing|heard|check(?:ing)?\s+out"
    r"|loving|love|obsessed\s+with|recommend(?:ing)?|stream(?:ing)?|queue(?:d)?\s+up|discovered|watch"
    r"|revisit(?:ing)?|new\s+(?:single|song|track|music|video|ep|album)\s+(?:from|by)|premiere\s+(?:from|of)"
    r"|put\s+on|thinking\s+(?:about|of)|humming|because"
    r"|(?:crying|dancing|vibing|screaming|singing(?:\s+along)?|driving|running|working|cleaning|cooking|studying)\s+to"
    r"|is)\s+",
    re.I,
)
ARTIST_STOP = re.compile(
    r"\s+(?:on|from|off|via|is|are|and\s+(?:it|i|we)|out|feat\.?|ft\.?|featuring|with\s+special)\b.*$"
    r"|[,;:!?|(\[].*$",
    re.I,
)
# After "by" in an all-lowercase post: where the name ends.
LOWERCASE_ARTIST_STOP = re.compile(
    r"\s+(?:in|on|at|for|while|when|during|hits|never|still|made|makes|got|gets|goes|is|was|and|with|from|has|have"
    r"|had|been|will|just|really|always"
    r"|every|all|again|today|tonight|forever|live|lol|omg)\b.*$"
)
# Words that make a side read like a sentence, not a name.
CHATTER = re.compile(
    r"\b(?:i|i'm|im|i've|i'll|me|my|we|we're|you're|is|was|were|am|be|been|can't|cannot|don't|doesn't"
    r"|isn't|should|would|could|will|gonna|wanna|lol|omg|tbh|imo|thanks|thank|please|here's|there's"
    r"|today|tomorrow|yesterday|tonight|everyone|anyone|guys|folks|are|shares?|covers?|remix(?:es|ed)?"
    r"|drops?|releases?|returns?|announces?|unveils?|debuts?|premieres?|teams?|watch)\b"
    r"|[\"“”«»„]",
    re.I,
)
# In titles only what no title says ("I", "My", "Tonight" are common in titles).
# "please" and "thanks" only in lowercase: "Please Please Please" and "Thank You" are titles.
TITLE_CHATTER = re.compile(r"(?i:\b(?:lol|lmao|omg|tbh|imo|smh|here's|there's)\b)|\b(?:thanks|please|guys|folks)\b")
# A lowercase run after a capitalised title is chatter when it holds one of these ("made me cry on a train").
_CHATTER_TAIL_WORDS = (
    "is was are were made makes me my i so such still just this that it never always the a an to and but "
    "with on in at for again every time day night when while got gets hits goes you your we our of photos "
    "too way more very really much deserves deserve needs ever all like af"
)
CHATTER_TAIL_WORDS = frozenset(_CHATTER_TAIL_WORDS.split())
GENERIC_WORDS = re.compile(r"\b(?:song|songs|track|tracks|album|single|playlist|music|tune|tunes)\b", re.I)
SENTENCE_END = re.compile(
    r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)(?<!\bJr)(?<!\bSr)(?<!\bvs)(?<!\bVs)(?<!\bVol)(?<!\bfeat)"
    r"(?<!\bft)(?<!\bInc)(?<!\bmr)(?<!\bms)(?<!\bmrs)(?<!\bst)(?<!\bPt)(?<!\bpt)(?<!\bCap)(?<!\bMt)(?<!\bLt)"
    r"(?<!\bCo)(?<!\bNo)(?<!\bDj)(?<!\bDJ)(?<!\b[A-Z])(?<![.!?])(?:(?:\.\.\.|…)(?=\s+[^a-z\s])|(?!\.\.)(?:\.+|[.!?]*[!?](?!\s+[A-Z])))\s+"
    + rf"(?![{DASHES}]{{1,2}}\s)"
)
RELEASE_VERB = re.compile(
    r"\s+(?:shares?|drops?|releases?|unveils?|returns?\s+with|debuts?|premieres?|announces?|teases?"
    r"|delivers?|(?:is|are)\s+back\s+with|puts?\s+out|offers?\s+up|performs?|sings?)\b",
    re.I,
)
NEW_FROM = re.compile(
    r"^(?:brand\s+)?new\s+(?:music\s+|single\s+|song\s+|track\s+|video\s+)?(?:from|by)\s+(?P<artist>[^:]{1,60}?)\s*:\s*"
    r"(?P<title>.+)$",
    re.I,
)
RETWEET = re.compile(r"(?i)\bRT\s+@\w+\s*:\s*")

MAX_TEXT = 2_000  # characters of a post we read
MAX_QUOTES = 12  # quoted spans we consider per form
NEAR = 120  # characters around a quoted title where its artist may be
MAX_ARTIST_WORDS = 6
MAX_TITLE_WORDS = 10
MAX_UNQUOTED_TITLE_WORDS = 10
LONG_UNQUOTED_TITLE_WORDS = 7  # longer unquoted titles lose some plausibility
MAX_TITLE_WORDS_CUT = 8  # the span scorer's shorter readings cut at most this many words off a title
MAX_BARE_TITLE_WORDS = 5  # unquoted titles tried against the catalog after a possessive
MAX_NETWORK_LOOKUPS = 3  # per post: a network provider is slow and rate limited

# Plausibility: the base each form gets, then what the cues add.
BASE = {
    "dash": 0.45,
    "quote_dash": 0.45,  # “Title” - Name: a quote and its source read the same ("“Just Do It” - Nike")
    "quoted_by": 0.5,
    "possessive": 0.55,
    "cue_by": 0.55,
    "new_from": 0.65,
    "announce": 0.6,
    "artist_song": 0.6,
    "comma": 0.45,
    "colon": 0.45,
    "bracket": 0.55,
    "juxtaposed": 0.35,
    "loose_quote": 0.35,  # a name right before any quote: proposed for the span scorer only
    "bare_possessive": 0.1,
    "joined": 0.1,
}
# Forms only a provider can vouch for: without a confirmation they score 0.
CONFIRM_ONLY = frozenset({"bare_possessive", "joined"})
STRONG_BONUS = 0.3
MUSIC_BONUS = 0.1
QUOTED_BONUS = 0.1
LINK_BONUS = 0.05
NAME_PAIR_BONUS = 0.1  # a bare "Name - Name" clause that reads like a credit
ARTIST_KNOWN_BONUS = 0.15
OFF_TOPIC_PENALTY = 0.3
OFF_TOPIC_EMOJI_PENALTY = 0.15
UNCUED_BY_PENALTY = 0.15
BARE_RELEASE_PENALTY = 0.4  # "X release “Y”" with no song word: below ACCEPT even with the artist known
CONFIRMED_FLOOR = 0.9  # a confirmed song's confidence is at least this
ACCEPT = 0.5  # the lowest score kept
ACCEPT_ON_DEMAND = 0.4  # a post addressed to the bot asks for a song: a little more benefit of the doubt
OVERRULE = 0.7  # the span scorer keeps a reading the rules scored below ACCEPT only this sure of it
ON_DEMAND_EASING = ACCEPT - ACCEPT_ON_DEMAND  # the scorer's threshold eases as much for a request to the bot
CLEAR_LEAD = 0.15  # between two different songs, the winner must lead by this much


@dataclass
class _Cues:
    strong: bool
    music: bool
    link: bool
    off_topic: bool
    off_topic_emoji: bool
    album_post: bool
    not_a_song: str | None
    track_id: str | None
    lowercase_post: bool
    song_word: bool = False  # "song", "single", "track", "video" ...: the post says it is about a song
    known_artist: Callable[[str], bool] = lambda _artist: False
    known_credit: Callable[[str], bool] = lambda _artist: False  # the artist, or one artist of a credit
    on_demand: bool = False  # the post is addressed to the bot: it asks for a song
    news_words: int = 0  # "tour", "dates", "turns 25", "lawsuit" ...: news about an artist (a scorer feature)


class SongDetector:
    """detector(text) → Detection; detector.explain(text) → the candidates and why one won.

    The rules propose and describe candidates; the span scorer (span_scorer.py, trained on the dev split)
    chooses among them, or chooses no song. `rules_only=True` keeps the hand-tuned rules' own choice (the
    anchor bench/detect.py compares with); `scorer` swaps in another model (tests, training)."""

    def __init__(
        self,
        lookup: SongLookup | None = None,
        *,
        use_network: bool = True,
        rules_only: bool = False,
        scorer: SpanScorer | None = None,
    ) -> None:
        from deephype.listener.span_scorer import load_span_scorer  # span_scorer imports this module

        self.lookup = lookup
        self.use_network = use_network
        self.scorer = None if rules_only else (scorer or load_span_scorer())

    def __call__(self, text: str, *, on_demand: bool = False) -> Detection:
        return self.explain(text, on_demand=on_demand).detection

    def explain(self, text: str, *, on_demand: bool = False) -> Explanation:
        readings = self.readings(text, on_demand=on_demand, widen=self.scorer is not None)
        if self.scorer is None:
            return readings.ruled
        for candidate, row in zip(readings.eligible, readings.features, strict=True):
            candidate.probability = round(self.scorer.probability(row), 3)
        return self._choose(readings)

    def readings(self, text: str, *, on_demand: bool = False, widen: bool = True) -> Readings:
        """Every candidate reading, the span-scorer features of those that may win, and the rules' decision.

        widen=False: the rules' candidates alone, no features, as the rules need."""
        from deephype.listener.span_scorer import PostContext, candidate_features

        text = unicodedata.normalize("NFC", (text or "")[:MAX_TEXT])
        cues = _cues(text)
        cues.on_demand = on_demand
        if self.lookup is not None:
            cues.known_artist = self.lookup.knows_artist
            cues.known_credit = self.lookup.knows_credit
        cleaned = _clean(text)
        candidates = _dedupe(self._propose(cleaned, cues))
        for candidate in candidates:
            _score_plausibility(candidate, cues, self.lookup)
        self._confirm(candidates, cues)
        ruled = self._decide(candidates, cues, on_demand)
        if not widen:
            return Readings(ruled, [], [], [], not_a_song=False)
        widened = self._widen(candidates, cleaned, cues)
        live = [c for c in candidates if c.veto is None]
        context = PostContext(
            rule_winner=(_key(ruled.detection.artist), _key(ruled.detection.title or ""))
            if ruled.detection.artist
            else None,
            live_readings=len({c.key for c in live}),
            live_clauses=len({c.clause for c in live}),
        )
        # A rules' veto holds (scores, dates, lists, pointers ...); a shorter reading may be cut from a sentence.
        eligible = [c for c in candidates + widened if c.veto is None or (c.variant and c.veto == CUT_FROM_A_SENTENCE)]
        not_a_song = cues.not_a_song is not None and not _in_a_title(cues.not_a_song, candidates)
        features = [candidate_features(c, cues, context) for c in eligible]
        return Readings(ruled, widened, eligible, features, not_a_song=not_a_song, on_demand=on_demand)

    # --- step 1b: shorter readings for the span scorer --------------------------------------------------

    def _widen(self, candidates: list[Candidate], cleaned: str, cues: _Cues) -> list[Candidate]:
        """Readings the rules did not keep, for the scorer to weigh: the rule's title cut after each word
        ("Wonderwall is overrated" → "Wonderwall"), its artist without its first words ("the way ethel
        cain" → "ethel cain"), and a name right before any quote ('Tame Impala "X" will be played ...').
        Only the offline catalog is asked about them: network lookups stay with the rules' readings."""
        seen = {_reading_key(c) for c in candidates}
        widened: list[Candidate] = []
        for candidate in candidates:
            if not candidate.artist or not candidate.title:
                continue
            title_words = candidate.title.split()
            titles = [(candidate.title, 0, "")]
            if not candidate.quoted:
                keep_from = max(1, len(title_words) - MAX_TITLE_WORDS_CUT)
                titles += [
                    (_strip_edges(" ".join(title_words[:kept])), len(title_words) - kept, title_words[kept])
                    for kept in range(keep_from, len(title_words))
                ]
            artist_words = candidate.artist.split()
            artists = [
                (" ".join(artist_words[drop:]), drop)
                for drop in range(min(len(artist_words), 4))
                # "The Strokes" → "Strokes" is the same name, not a shorter reading
                if drop == 0 or any(word.lower() not in NAME_CONNECTORS for word in artist_words[:drop])
            ]
            for (artist, dropped), (title, cut, next_word) in itertools.product(artists, titles):
                if (dropped, cut) == (0, 0):
                    continue
                reading = Candidate(
                    _strip_edges(artist, keep_dots=True), title, candidate.form, candidate.quoted, candidate.clause
                )
                reading.variant, reading.title_words_cut, reading.artist_words_cut = True, cut, dropped
                reading.next_word = next_word
                if _reading_key(reading) not in seen:
                    seen.add(_reading_key(reading))
                    widened.append(reading)
        for index, clause in enumerate(_clauses(cleaned)):
            for match in itertools.islice(QUOTED.finditer(clause), MAX_QUOTES):
                before = re.sub(r"['’]s?\s*$", "", clause[max(0, match.start() - NEAR) : match.start()])
                words = before.split()
                names = [" ".join(words[-size:]) for size in range(1, min(len(words), 3) + 1)]
                owner = re.search(r"(?P<name>\S+(?:\s+\S+){0,3})['’]s?\s+\S+(?:\s+\S+)?\s*$", before)
                if owner:  # "Listen to Cameron Winter's haunting “X”": the name before the possessive
                    names.append(_capitalised_run(owner.group("name")))
                for name in names:
                    reading = Candidate(
                        _strip_edges(name, keep_dots=True),
                        _strip_edges(_quoted_text(match)),
                        "loose_quote",
                        True,
                        index,
                    )
                    if reading.artist and reading.title and _reading_key(reading) not in seen:
                        seen.add(_reading_key(reading))
                        widened.append(reading)
        kept = []
        for reading in widened:
            reading.veto = _veto(reading, cues, trimmed=reading.variant)
            if reading.variant and reading.veto not in (None, CUT_FROM_A_SENTENCE):
                continue  # a shorter reading that fails another veto has never been the song in dev: save the time
            kept.append(reading)
        widened = kept
        for reading in widened:
            _score_plausibility(reading, cues, self.lookup)
            if self.lookup is not None and reading.veto is None:
                reading.confirmation = self.lookup.confirm(
                    reading.artist, reading.title, cues.track_id, use_network=False
                )
            reading.score = reading.plausibility
        return widened

    # --- step 1: propose --------------------------------------------------------------------------------

    def _propose(self, cleaned: str, cues: _Cues) -> list[Candidate]:
        found: list[Candidate] = []
        clauses = _clauses(cleaned)
        for index, clause in enumerate(clauses):
            finders = [_new_from, _dash, _cue_by]
            if QUOTE_CHARS.search(clause):  # the quote forms are the costly ones: only where a quote is
                finders += [_quoted_by, _possessive, _announce, _artist_song, _comma, _colon, _juxtaposed]
                finders += [_bracket] if "「" in clause else []
            for finder in finders:
                found.extend(finder(clause, index, cues))
            if self.lookup is not None and POSSESSIVE_S.search(clause):
                found.extend(_bare_possessive(clause, index, self.lookup))
        return found

    # --- step 2: confirm and rank -----------------------------------------------------------------------

    def _confirm(self, candidates: list[Candidate], cues: _Cues) -> None:
        if self.lookup is None:
            for candidate in candidates:
                candidate.score = 0.0 if candidate.form in CONFIRM_ONLY else candidate.plausibility
            return
        live = sorted((c for c in candidates if c.veto is None), key=lambda c: -c.plausibility)
        network_left = MAX_NETWORK_LOOKUPS if self.use_network else 0
        for candidate in live:
            if candidate.form in CONFIRM_ONLY:
                candidate.confirmation = self.lookup.confirm(
                    candidate.artist, candidate.title, cues.track_id, use_network=False
                )
            else:
                # Only candidates that could win on their own, or nearly, are worth a network call.
                ask_network = network_left > 0 and candidate.plausibility >= ACCEPT_ON_DEMAND - 0.1
                candidate.confirmation = self.lookup.confirm(
                    candidate.artist, candidate.title, cues.track_id, use_network=ask_network
                )
                if ask_network and candidate.confirmation.provider == getattr(self.lookup.network, "name", None):
                    network_left -= 1
        for candidate in candidates:
            verdict = candidate.confirmation.verdict if candidate.confirmation else None
            if verdict == Verdict.confirmed:
                candidate.score = CONFIRMED_FLOOR + (0.99 - CONFIRMED_FLOOR) * candidate.plausibility
            elif verdict == Verdict.artist_known and candidate.form not in CONFIRM_ONLY:
                candidate.score = candidate.plausibility + ARTIST_KNOWN_BONUS
            elif candidate.form in CONFIRM_ONLY:
                candidate.score = 0.0  # only a provider can vouch for an unquoted title after "'s"
            else:
                candidate.score = candidate.plausibility
            candidate.score = round(min(max(candidate.score, 0.0), 0.99), 3)

    def _choose(self, readings: Readings) -> Explanation:
        """The span scorer's choice: the likeliest reading that may win, if it clears the model's threshold."""
        assert self.scorer is not None
        ruled = readings.ruled
        nothing = Explanation(Detection(spotify_track_id=ruled.detection.spotify_track_id), ruled.candidates, "")
        nothing.readings = readings.widened
        if readings.not_a_song or not readings.eligible:
            nothing.decision = ruled.decision
            return nothing
        # Ties go to the rules' own reading, then to the earlier one.
        best = max(readings.eligible, key=lambda c: (c.probability or 0.0, not c.variant))
        probability = best.probability or 0.0
        rules_said = f"the rules alone: {ruled.decision}"
        # The rules weighed this very reading and said no: overruling them takes a surer model.
        rules_threshold = ACCEPT_ON_DEMAND if readings.on_demand else ACCEPT
        overrules = not best.variant and best.form != "loose_quote" and best.score < rules_threshold
        threshold = self.scorer.threshold - (ON_DEMAND_EASING if readings.on_demand else 0.0)
        threshold = max(threshold, OVERRULE) if overrules else threshold
        if probability < threshold:
            why = f"best reading {best.artist} - {best.title} has probability {probability:.2f}"
            nothing.decision = f"{why}, below {threshold:.2f} ({rules_said})"
            return nothing
        # confidence stays what the post and the providers say (plausibility, or >= 0.9 when confirmed);
        # the probability decides which reading and whether any.
        detection = Detection(
            artist=best.artist,
            title=best.title,
            spotify_track_id=ruled.detection.spotify_track_id,
            confidence=best.score,
        )
        why = f"kept {best.artist} - {best.title} ({best.form}{', a shorter reading' if best.variant else ''}"
        why += f", span scorer probability {probability:.2f} ≥ {threshold:.2f}; {rules_said})"
        chosen = Explanation(detection, ruled.candidates, why)
        chosen.readings = readings.widened
        return chosen

    def _decide(self, candidates: list[Candidate], cues: _Cues, on_demand: bool) -> Explanation:
        nothing = Detection(spotify_track_id=cues.track_id)
        if not candidates:
            return Explanation(nothing, candidates, "no candidate: no form of artist and title matched")
        if cues.not_a_song and not _in_a_title(cues.not_a_song, candidates):
            return Explanation(nothing, candidates, f"not about a song ({cues.not_a_song!r})")
        threshold = ACCEPT_ON_DEMAND if on_demand else ACCEPT
        live = [c for c in candidates if c.veto is None]
        if not live:
            return Explanation(nothing, candidates, "every candidate was vetoed")
        kept = sorted((c for c in live if c.score >= threshold), key=lambda c: (-c.score, -c.plausibility))
        if not kept:
            best = max(live, key=lambda c: c.score)
            return Explanation(
                nothing,
                candidates,
                f"best candidate {best.artist} - {best.title} scored {best.score:.2f}, below {threshold:.2f}",
            )
        winner = kept[0]
        rivals = [c for c in kept[1:] if c.key != winner.key and c.clause != winner.clause]
        if rivals:
            runner = rivals[0]
            winner_confirmed = _confirmed(winner)
            if not (winner_confirmed and not _confirmed(runner)) and winner.score - runner.score < CLEAR_LEAD:
                return Explanation(
                    nothing,
                    candidates,
                    f"two different songs ({winner.artist} - {winner.title}, {runner.artist} - {runner.title}): "
                    "a list, not one song",
                )
        detection = Detection(
            artist=winner.artist,
            title=winner.title,
            spotify_track_id=cues.track_id,
            confidence=winner.score,
        )
        why = "confirmed by " + (winner.confirmation.provider or "?") if _confirmed(winner) else "plausible"
        others = len({c.key for c in live}) - 1
        return Explanation(
            detection,
            candidates,
            f"kept {winner.artist} - {winner.title} ({winner.form}, {why}, score {winner.score:.2f}"
            f" ≥ {threshold:.2f}); {others} other reading(s) scored lower",
        )


def _reading_key(candidate: Candidate) -> tuple[str, str]:
    """ "The Strokes" and "Strokes" are one name: a shorter reading must differ by more than "the"."""
    artist, title = candidate.key
    return re.sub(r"^the\s+", "", artist), title


def _in_a_title(word: str, candidates: list[Candidate]) -> bool:
    """ "Mac Miller - Good News" names a song a provider knows: its "News" is no news post."""
    key = _key(word)
    return bool(key) and any(key in _key(c.title) for c in candidates if c.veto is None and _confirmed(c))


def _confirmed(candidate: Candidate) -> bool:
    return candidate.confirmation is not None and candidate.confirmation.verdict == Verdict.confirmed


_default: SongDetector | None = None


def detect_song(text: str, *, on_demand: bool = False) -> Detection:
    """The song a post names, checked against the bundled offline catalog (no network)."""
    global _default
    if _default is None:
        _default = SongDetector(offline_lookup())
    return _default(text, on_demand=on_demand)


# --- cues and cleaning -----------------------------------------------------------------------------------


def _cues(text: str) -> _Cues:
    track_ids = SPOTIFY_TRACK.findall(text)
    track_id = track_ids[0] if len(set(track_ids)) == 1 else None
    link = bool(MUSIC_LINK.search(text))
    without_links = URL.sub(" ", text)
    strong = bool(STRONG_CUE.search(without_links)) or track_id is not None
    music = (
        strong
        or link
        or bool(
            MUSIC_CUE.search(without_links)
            or BRACKET_VERSION_ANYWHERE.search(without_links)
            or DASH_VERSION.search(without_links)
        )
    )
    music_video = MUSIC_VIDEO.search(without_links) is not None
    not_a_song = next(
        (
            match  # "(Live at Reading)" is a version, and 🎬 next to "video" a music video
            for match in NOT_A_SONG.finditer(BRACKET_VERSION_ANYWHERE.sub(" ", without_links))
            if not (match.group(0) == "🎬" and music_video)
        ),
        None,
    )
    album_post = (
        bool(ALBUM_WORDS.search(without_links))
        and not SONG_WORDS.search(without_links)
        and not FROM_AN_ALBUM.search(without_links)
    )
    letters = [ch for ch in without_links if ch.isalpha()]
    return _Cues(
        strong=strong,
        music=music,
        link=link,
        off_topic=bool(OFF_TOPIC.search(without_links)),
        off_topic_emoji=bool(OFF_TOPIC_EMOJI.search(without_links)),
        album_post=album_post,
        not_a_song=not_a_song.group(0) if not_a_song else None,
        track_id=track_id,
        lowercase_post=bool(letters) and not any(ch.isupper() for ch in letters),
        song_word=bool(SONG_WORDS.search(without_links)) or music_video,
        news_words=min(len(NEWS_WORDS.findall(without_links)), 3),
    )


def _clean(text: str) -> str:
    """Drop links, emoji, cue words and decorative hashtags; keep line breaks as clause boundaries."""
    text = URL.sub(" ", text)
    text = RETWEET.sub("\n", text)
    text = re.sub(r"(?<!\w)[*_]+|[*_]+(?!\w)", "", text)  # **bold**, _italic_
    text = re.sub(r"(?m)^\s*#{1,6}\s+", "", text)  # "## Heading"
    text = re.sub(r"^(?:\s*@\w+(?:[.@][\w-]+)*[,:]?)+", " ", text)  # a reply's addressees: "@deephype what ..."
    # A Bluesky or Mastodon handle ending the post addresses someone ("... @deephype.bsky.social"): no name.
    text = re.sub(r"(?:\s+@\w+(?:[.@][\w-]+)*[.@][\w-]+)+\s*$", " ", text)
    text = re.sub(r"(?:^|(?<=\s))@(\w+)(?:@[\w.]+)?", r"\1", text)  # "#np @Beyonce - Halo": the name stays
    text = CUE_PREFIX.sub("\n", text)
    # Emoji, symbols and joiners become clause marks; letters, digits, punctuation and $ (A$AP) stay.
    if not text.isascii():
        text = "".join(
            " • " if unicodedata.category(ch) in ("So", "Sk", "Cf", "Co", "Cn") and ch not in "`´°" else ch
            for ch in text
        )
    text = re.sub(r"(?:\s*•)+", " •", text)
    text = re.sub(rf"•\s*(?=[{DASHES}]{{1,2}}\s)|(?<=\s[{DASHES}])\s*•|(?<=\s[{DASHES}]{{2}})\s*•", " ", text)
    text = BRACKET_VERSION_ANYWHERE.sub(" ", text)  # "Do I Wanna Know? [Official Video]" before sentences
    text = text.replace("\u00a0", " ")
    lines = []
    for line in text.splitlines():
        line = re.sub(r"(?:\s*#\w+)+\s*$", "", line)  # a run of hashtags at either end is decoration
        line = re.sub(r"^\s*(?:#\w+\s*)+", "", line)
        line = re.sub(r"^\s*\[[^\]]{1,30}\]\s*:?\s*", "", line)  # "[Premiere] Artist - Title"
        line = re.sub(r"#(\w)", r"\1", line)
        line = re.sub(r"^[\s•]+|[\s•]+$", "", line)
        lines.append(re.sub(r"[ \t]+", " ", line).strip())
    return "\n".join(line for line in lines if line)


def _clauses(cleaned: str) -> list[str]:
    """Lines, emoji marks, cue colons ("Premiere: ...") and sentences; "|" and "//" next to a dash."""
    clauses = []
    for line in cleaned.split("\n"):
        for piece in re.split(r"\s*•\s*", line):
            for sentence in SENTENCE_END.split(piece):
                clauses.extend(_split_cue_colon(sentence))
    result = []
    for clause in clauses:
        if DASH_SEPARATOR.search(clause):
            result.extend(p.strip() for p in re.split(r"\s+\|\s+|\s+//\s+", clause))
        else:
            result.append(clause.strip())
    return [c for c in result if c]


def _split_cue_colon(sentence: str) -> list[str]:
    """ "Premiere: Men I Trust - X" → two clauses; "Bon Iver - Re: Stacks" stays one (the dash comes first)."""
    match = re.match(r"^(?P<head>[^:]{1,40}?):\s+(?P<rest>.+)$", sentence)
    if match is None or ANY_SEPARATOR.search(match.group("head")) or NEW_FROM.match(sentence):
        return [sentence]
    if _colon_credit(match.group("head"), match.group("rest")):
        return [sentence]  # "Yves Tumor: “Gospel for a New Century”"
    return [match.group("head"), *_split_cue_colon(match.group("rest"))]


COLON_HEAD_NOT_ARTIST = re.compile(
    r"^(?:premiere|listen|new\s+\w+|track|song|best\s+\w+(?:\s+\w+)?|now\s+\w+|np|title|quote|essay|review|opinion"
    r"|interview|news|update|reminder|poll|thread|sign|note|feature|exclusive|watch|video|today|tonight|mood)\b",
    re.I,
)


def _colon_credit(head: str, rest: str) -> bool:
    head = head.strip()
    return (
        len(head.split()) <= 5
        and _titlecase(head)
        and _name_like(head)
        and not COLON_HEAD_NOT_ARTIST.match(head)
        and _leading_quoted(rest.strip()) is not None
    )


def _colon(clause: str, index: int, cues: _Cues) -> list[Candidate]:
    """Yves Tumor: “Gospel for a New Century”"""
    match = re.match(r"^(?P<head>[^:]{1,40}?):\s+(?P<rest>.+)$", clause)
    if match is None or not _colon_credit(match.group("head"), match.group("rest")):
        return []
    title = _leading_quoted(match.group("rest").strip()) or ""
    return [_make(match.group("head"), title, "colon", True, index, cues)]


# --- the forms -------------------------------------------------------------------------------------------


def _make(artist: str, title: str, form: str, quoted: bool, clause: int, cues: _Cues, **kw: bool) -> Candidate:
    """Tidy both sides into a Candidate; a side that cannot be a name or title vetoes it (kept for --explain)."""
    if kw.get("known"):
        artist_clean = _strip_edges(artist, keep_dots=True)  # the catalog knows this whole name
    else:
        artist_clean = _tidy_artist(artist, lead_in=kw.get("lead_in", False), tail_run=kw.get("tail_run", False))
        member = BAND_MEMBER.match(artist_clean)
        if member and not cues.known_artist(artist_clean):
            artist_clean = member.group("member")  # "Big Thief's Adrianne Lenker shares ...": hers, not the band's
    untrimmed = _tidy_title(title, quoted=quoted, cut_tail=False)
    title_clean = _tidy_title(title, quoted=quoted, cut_tail=True)
    candidate = Candidate(artist_clean, title_clean, form, quoted, clause)
    candidate.comma_tail = not quoted and re.search(r",\s+[^\W_]", title) is not None
    if title_clean != untrimmed:
        candidate.reasons.append("chatter cut after the title")
    candidate.veto = _veto(candidate, cues, trimmed=title_clean != untrimmed)
    return candidate


# "Sonic Youth's Kim Gordon": a band's member, named with two words or more ("Jane's Addiction" is a band).
BAND_MEMBER = re.compile(r"^.+?['’]s\s+(?P<member>[A-Z][^\s'’]*(?:\s+[A-Z][^\s'’]*)+)$")


def _dash(clause: str, index: int, cues: _Cues) -> list[Candidate]:
    """Artist - Title, Artist – “Title”, “Title” — Artist, Artist // Title, Artist | Title."""
    clause = DASH_VERSION.sub("", clause)
    separator = DASH_SEPARATOR if DASH_SEPARATOR.search(clause) else ANY_SEPARATOR
    parts = separator.split(clause)
    if len(parts) < 2:
        return []
    while len(parts) > 2 and _droppable_part(parts[-1]):
        parts = parts[:-1]  # "X - Y - Official Video", "A – T — the quietest love song of the decade"
    if len(parts) > 2:
        listed = Candidate(parts[0], " - ".join(parts[1:]), "dash", False, index, veto="a list of three or more")
        if not cues.known_artist(_strip_edges(parts[0], keep_dots=True)):
            return [listed]
        # "John Coltrane - A Love Supreme, Pt. I - Acknowledgement": one title with a dash, if a provider knows it
        joined = _make(parts[0], " - ".join(parts[1:]), "joined", False, index, cues, known=True)
        return [listed, joined]
    left, right = (p.strip() for p in parts)
    if re.search(r"\d$", left) and re.match(r"\d", right):
        return [Candidate(left, right, "dash", False, index, veto="numbers on both sides (a score or a range)")]
    left_quoted = _fully_quoted(left)
    right_quoted = _fully_quoted(right) or _leading_quoted(right)
    if left_quoted and not right_quoted:
        candidate = _make(right, left_quoted, "quote_dash", True, index, cues)
        if not cues.strong and not _titlecase(candidate.title):
            candidate.veto = candidate.veto or "a quoted phrase and its speaker, not a song"
        return [candidate]
    if QUOTED.search(left):
        return []  # 'X’s single “Y” is about Z – Magazine': prose around a quote
    known = _known_name_at_end(left, cues)
    usual = _tidy_artist(left, lead_in=True)
    if known is not None and len(known.split()) > len(usual.split()):
        # "Godspeed You! Black Emperor", "black country, new road": the catalog knows the longer name
        return [_make(known, right_quoted or right, "dash", right_quoted is not None, index, cues, known=True)]
    lowercase_words = [w for w in left.split() if w[:1].islower() and w.lower() not in NAME_CONNECTORS]
    # "Nothing beats Stevie Wonder - X": one lowercase verb is enough, but not a word names are made with
    # ("Death from Above 1979", "Guided by Voices", "Panic! at the Disco", "Everything but the Girl").
    # A credit the catalog knows keeps its lowercase words ("Charli xcx & Billie Eilish").
    sentence_word = (
        len(lowercase_words) == 1
        and lowercase_words[0].isalpha()
        and len(lowercase_words[0]) >= 4  # "xcx", "xx": stylised names are short
        and lowercase_words[0].lower() not in NAME_MIDDLE_WORDS
        and not cues.known_credit(_strip_edges(left, keep_dots=True))
    )
    tail_run = (len(lowercase_words) >= 2 or sentence_word) and _capitalised_run(left) != left
    found = [
        _make(
            left, right_quoted or right, "dash", right_quoted is not None, index, cues, lead_in=True, tail_run=tail_run
        )
    ]
    found[0].bare = _key(found[0].artist) == _key(left) and _key(found[0].title) == _key(right_quoted or right)
    if found[0].bare and found[0].veto is not None:
        found[0].veto = _veto(found[0], cues, trimmed=False)  # the vetoes that read "bare" (numbers, 'song')
    as_written = _strip_edges(right)
    if right_quoted is None and found[0].title != as_written and cues.known_artist(found[0].artist):
        # "Delilah (pull me out of this)": what looked like an aside may be the title; a provider decides
        whole = Candidate(found[0].artist, as_written, "joined", False, index)
        whole.veto = _veto(whole, cues, trimmed=False)
        found.append(whole)
    return found


def _known_name_at_end(left: str, cues: _Cues) -> str | None:
    """The longest run of words ending the left side that the catalog knows as an artist."""
    words = left.split()
    for start in range(max(0, len(words) - MAX_ARTIST_WORDS), len(words)):
        name = _strip_edges(" ".join(words[start:]), keep_dots=True)
        if cues.known_artist(name):
            return name
    return None


def _known_name_at_start(words_after: str, cues: _Cues) -> str | None:
    """The longest run of words starting the text that the catalog knows as an artist."""
    words = words_after.split()
    for end in range(min(len(words), MAX_ARTIST_WORDS), 0, -1):
        name = _strip_edges(" ".join(words[:end]), keep_dots=True)
        if cues.known_artist(name):
            return name
    return None


def _droppable_part(part: str) -> bool:
    if part.strip()[:1] in OPEN_QUOTES:
        return False
    part = _strip_edges(part)
    if NOT_A_TITLE.match(part) or re.fullmatch(rf"(?:{VERSION_WORDS})(?:\s+(?:{VERSION_WORDS}))*", part, re.I):
        return True
    words = part.split()
    return len(words) >= 3 and part[:1].islower() and any(w.lower() in CHATTER_TAIL_WORDS for w in words)


def _quoted_by(clause: str, index: int, cues: _Cues) -> list[Candidate]:
    """“Title” by Artist; « Titre » de Artiste; „Titel“ von Künstler."""
    found = []
    for match in itertools.islice(QUOTED.finditer(clause), MAX_QUOTES):
        rest = clause[match.end() : match.end() + NEAR]
        by = re.match(r"\s*,?\s+(?:by|de|von|di)\s+(.+)", rest, re.I)
        if by is None:
            continue
        artist, known = _artist_after_by(by.group(1), cues)
        found.append(_make(artist, _quoted_text(match), "quoted_by", True, index, cues, known=known))
    return found


def _artist_after_by(words: str, cues: _Cues) -> tuple[str, bool]:
    """The name after "by", and whether the catalog knows it (then it is kept whole: "Earth, Wind & Fire")."""
    known = _known_name_at_start(words, cues)
    if known is not None:
        return known, True  # "The xx", "100 gecs", "a-ha": the catalog knows where the name ends
    if words[:1].isupper() or words[:1].isdigit():
        return _leading_capitalised_run(ARTIST_STOP.sub("", words)), False
    return LOWERCASE_ARTIST_STOP.sub("", ARTIST_STOP.sub("", words)), False


POSSESSIVE_BEFORE_QUOTE = re.compile(
    r"(?P<artist>[^\n!?:;,]+?)['’]s?\s+(?i:(?:new|latest|upcoming|classic|brilliant|gorgeous|tender|first|second"
    r"|debut|lead|solo|title)\s+)*(?i:(?:single|song|track|tune|cut|banger|video|anthem|ballad|jam)\s+)?"
    r"(?i:(?:for|of)\s+)?$"
)


def _possessive(clause: str, index: int, cues: _Cues) -> list[Candidate]:
    """Artist's 'Title', Artist’s new single “Title”, Jockstrap's video for 'Glasgow'."""
    found = []
    for match in itertools.islice(QUOTED.finditer(clause), MAX_QUOTES):
        before = clause[max(0, match.start() - NEAR) : match.start()]
        owner = POSSESSIVE_BEFORE_QUOTE.search(before)
        if owner is None:
            continue
        artist = _capitalised_run(owner.group("artist"))
        if not (artist.endswith("s") or re.search(r"['’]s\s", owner.group(0))):
            continue  # a bare apostrophe is possessive only after an s: "The Strokes' 'Reptilia'"
        found.append(_make(artist, _quoted_text(match), "possessive", True, index, cues, lead_in=True))
    return found


def _bare_possessive(clause: str, index: int, lookup: SongLookup) -> list[Candidate]:
    """bon iver's holocene in the snow: unquoted, so every short title is tried, and only a provider can
    confirm one (the score is 0 without a confirmation)."""
    match = re.search(r"(?P<artist>[^\n.!?:;,]{1,60}?)['’]s\s+(?P<rest>[^\"“”'‘’«»]+)$", clause)
    if match is None:
        return []
    artist = _capitalised_run(match.group("artist"))
    if not lookup.knows_artist(artist):
        artist = _known_suffix(match.group("artist"), lookup) or ""
        if not artist:
            return []
    words = match.group("rest").split()
    return [
        Candidate(artist, _strip_edges(" ".join(words[:n])), "bare_possessive", False, index)
        for n in range(1, min(MAX_BARE_TITLE_WORDS, len(words)) + 1)
    ]


def _known_suffix(words_before: str, lookup: SongLookup) -> str | None:
    words = words_before.split()
    for start in range(max(0, len(words) - MAX_ARTIST_WORDS), len(words)):
        name = " ".join(words[start:])
        if lookup.knows_artist(name):
            return name
    return None


BARE_RELEASE = re.compile(r"releas\w*|puts?\s+out", re.I)


def _announce(clause: str, index: int, cues: _Cues) -> list[Candidate]:
    """Artist shares new single “Title”; Artist returns with disco stomper 'Title'."""
    verbs = list(RELEASE_VERB.finditer(clause))
    if not verbs:
        return []
    verb = verbs[0]
    quote = next(QUOTED.finditer(clause, verb.end()), None)
    # "announce new album, share title track “X”": what stands between the last verb and the quote counts
    last = max(
        (v for v in verbs if quote is not None and v.end() <= quote.start()), key=lambda v: v.end(), default=verb
    )
    between = clause[last.end() : quote.start()] if quote is not None else ""
    if quote is None or len(between.split()) > 8 or ALBUM_WORDS.search(between):
        return []  # "announces new album “X”": an album
    artist = clause[: verb.start()]
    candidate = _make(artist, _quoted_text(quote), "announce", True, index, cues, lead_in=True, tail_run=True)
    if BARE_RELEASE.fullmatch(last.group(0).strip()) and not cues.song_word:
        # "Fleetwood Mac release “Rumours”": what is released with no song word is as often an album; only a
        # provider that knows the song lifts it
        candidate.plausibility_penalty = BARE_RELEASE_PENALTY
        candidate.reasons.append("released, with no word saying it is a song (an album reads the same)")
    return [candidate]


def _artist_song(clause: str, index: int, cues: _Cues) -> list[Candidate]:
    """this Taylor Swift song 'Cruel Summer'"""
    found = []
    for match in itertools.islice(QUOTED.finditer(clause), MAX_QUOTES):
        before = clause[max(0, match.start() - NEAR) : match.start()]
        owner = re.search(r"(?P<artist>\S.*?)\s+(?i:song|track|tune|single|banger|classic|jam)\s*$", before)
        if owner is None or re.search(r"['’]s?\s*$|['’]s\s", owner.group("artist")):
            continue
        artist = _capitalised_run(owner.group("artist"))
        found.append(_make(artist, _quoted_text(match), "artist_song", True, index, cues))
    return found


def _new_from(clause: str, index: int, cues: _Cues) -> list[Candidate]:
    """New from Mitski: "Nobody" """
    match = NEW_FROM.match(clause)
    if match is None:
        return []
    title = match.group("title").strip()
    quoted = _leading_quoted(title)
    return [_make(match.group("artist"), quoted or title, "new_from", quoted is not None, index, cues)]


def _comma(clause: str, index: int, cues: _Cues) -> list[Candidate]:
    """Best New Track: Waxahatchee, "Much Ado About Nothing" (only a whole clause of that shape)."""
    match = re.fullmatch(r"(?P<artist>[^,\"“”«»]{1,60}),\s*(?P<rest>.+)", clause)
    if match is None:
        return []
    quoted = _fully_quoted(match.group("rest").strip()) or _leading_quoted(match.group("rest").strip())
    if quoted is None:
        return []
    return [_make(match.group("artist"), quoted, "comma", True, index, cues)]


JUXTAPOSED_NAME = re.compile(r"(?:^|(?<=\s))(?P<artist>(?:[A-Z0-9][\w.&'’+-]*\s+){0,4}[A-Z0-9][\w.&'’+-]*)\s+$")


# What may follow a quoted title in a post that says "song": 'SZA "Kill Bill" has the best chorus'.
JUXTAPOSED_TAIL = re.compile(
    r"\s+(?:is|was|has|had|remains|will|would|still|just|really|never|always|hits|slaps|goes|makes|made|gets|got"
    r"|sounds|deserves|might|may|could|should|must|feels|lives)\b"
)


def _juxtaposed(clause: str, index: int, cues: _Cues) -> list[Candidate]:
    """Cocteau Twins "Heaven or Las Vegas": a name right before a quote that ends the clause. People quote
    after names for much else ("Drake 'not worried' about ...", "Radiohead 'OK Computer' turns 25"), so the
    quote must end the clause (or chatter follow it), read like a title, and a music cue, a known artist or a
    request to the bot must carry it."""
    found = []
    for match in itertools.islice(QUOTED.finditer(clause), MAX_QUOTES):
        name = JUXTAPOSED_NAME.search(clause[max(0, match.start() - NEAR) : match.start()])
        if name is None:
            continue
        rest = clause[match.end() :].strip()
        if rest and not (
            re.fullmatch(r"[\W_]*", rest)
            or TITLE_TAIL.match(" " + rest)
            or (cues.song_word and JUXTAPOSED_TAIL.match(" " + rest))
        ):
            continue
        if not (_titlecase(_quoted_text(match)) or cues.strong or cues.on_demand):
            continue
        artist = _capitalised_run(name.group("artist"))
        if not (cues.music or cues.strong or cues.on_demand or cues.known_credit(_strip_edges(artist, keep_dots=True))):
            continue
        found.append(_make(artist, _quoted_text(match), "juxtaposed", True, index, cues, lead_in=True))
    return found


def _bracket(clause: str, index: int, cues: _Cues) -> list[Candidate]:
    """Aimer「カタオモイ」"""
    match = re.search(r"(?P<artist>[^\s「」]+(?:\s[^\s「」]+){0,3})\s*「(?P<title>[^「」]{1,60})」", clause)
    if match is None:
        return []
    return [_make(match.group("artist"), match.group("title"), "bracket", True, index, cues)]


CUE_BY = re.compile(
    r"^(?:.*?\b(?:listening\s+to|playing|spinning|on\s+repeat:?|thoughts\s+on|what\s+about|make\s+of|think\s+of"
    r"|about|do|try)\s+)?(?P<title>[^\"“”«»]+?)\s+by\s+(?P<artist>.+)$",
    re.I,
)


def _cue_by(clause: str, index: int, cues: _Cues) -> list[Candidate]:
    """listening to Title by Artist; @deephype thoughts on Title by Artist? (only after a strong cue or in a
    request to the bot, since "photo by Jane" is not a song)"""
    if not (cues.strong or cues.on_demand):
        return []
    match = CUE_BY.match(clause)
    if match is None or (not cues.strong and not _titlecase(match.group("title"))):
        return []
    artist, known = _artist_after_by(match.group("artist"), cues)
    return [_make(artist, match.group("title"), "cue_by", False, index, cues, known=known)]


def _dedupe(candidates: list[Candidate]) -> list[Candidate]:
    """One candidate per (artist, title): a live one before a vetoed one, the earlier form first."""
    best: dict[tuple[str, str], Candidate] = {}
    for candidate in candidates:
        if not candidate.artist or not candidate.title:
            if candidate.veto:
                best.setdefault(("", f"veto:{len(best)}"), candidate)
            continue
        seen = best.get(candidate.key)
        if seen is None or (seen.veto is not None and candidate.veto is None):
            best[candidate.key] = candidate
    return list(best.values())


# --- plausibility and vetoes -----------------------------------------------------------------------------


CUT_FROM_A_SENTENCE = "a title cut out of a sentence"


def _veto(candidate: Candidate, cues: _Cues, *, trimmed: bool) -> str | None:
    """Why this reading can never be a song (None when it can)."""
    artist, title = candidate.artist, candidate.title
    if not artist or not title or not re.search(r"\w", artist) or not re.search(r"\w", title):
        return "an empty artist or title"
    possessive_end = re.search(r"['’]s?$", title) and not candidate.quoted
    if possessive_end and candidate.bare and len(title.split()) >= 2 and _titlecase(title):
        possessive_end = False  # "Dijon - Big Mike's": a whole clause that is a credit
    if NOT_A_TITLE.match(title) or possessive_end:
        return "the title is a pointer or call to action"
    if POST_OPENER.match(artist) and not cues.known_artist(artist):
        return "the artist side is a stock opener ('hot take', 'PSA', 'update')"
    if QUESTION_WORD.fullmatch(artist):
        return "a question ('who sings ...'), not a name"
    if DETERMINER_START.match(artist) and not cues.known_artist(artist):
        return "the artist starts like a sentence ('a', 'my', 'this' ...)"
    if ALBUM_IN_TITLE.search(title):
        return "an album, not a song"
    if COUNTER_START.match(artist) or COUNTER_START.match(title):
        return "a counter ('Chapter 4', 'Day 12'), not a name"
    if re.search(r"\d$", artist) and re.search(r"\d$", title):
        return "numbers after both names (a score)"
    if _looks_like_number_or_time(artist):
        return "the artist is a number, time or amount"
    if _looks_like_number_or_time(title) and not (
        ((cues.strong or cues.music) and re.fullmatch(r"\d{1,4}", title))
        or (candidate.bare and cues.known_credit(artist) and not cues.off_topic and _styled_number_title(title))
    ):
        return "the title is a number, time or amount"
    if _calendar_pair(artist, title):
        return "days or dates"
    if _places(artist) and (_places(title) or _places(" ".join(title.split()[:2]))):
        return "two places or teams"
    if len(artist.split()) > MAX_ARTIST_WORDS:
        return "the artist is too long for a name"
    limit = MAX_TITLE_WORDS if candidate.quoted else MAX_UNQUOTED_TITLE_WORDS
    if len(title.split()) > limit:
        return "the title is too long"
    if CHATTER.search(artist) and not (_titlecase(artist) and _name_like(artist)):
        return "the artist reads like a sentence"
    if not candidate.quoted and TITLE_CHATTER.search(title):
        return "the title reads like chatter"
    if cues.album_post and not cues.strong and candidate.form != "announce":
        return "an album post"
    generic_title = not candidate.quoted and GENERIC_WORDS.search(title) and not _titlecase(title)
    styled_generic = (
        generic_title and candidate.bare and cues.known_credit(artist) and _plain_lowercase_title(title)
    )  # "beabadoobee - glue song"
    if not cues.strong and (
        GENERIC_WORDS.search(artist) or (generic_title and not styled_generic) or GENERIC_WORDS.fullmatch(title)
    ):
        return "a generic word ('song', 'album') as a name"
    if trimmed and not (cues.music or cues.strong) and not _titlecase(title):
        return CUT_FROM_A_SENTENCE
    return None


def _styled_number_title(title: str) -> bool:
    """A known artist's title made of a number or with one: "$20", "10%", "22", "Plastic 100°C"."""
    return bool(re.fullmatch(r"[$#£€]?\d{1,4}%?", title) or (_titlecase(title) and re.match(r"[^\W\d_]", title)))


def _score_plausibility(candidate: Candidate, cues: _Cues, lookup: SongLookup | None) -> None:
    """How much the post itself says this is a song, 0..1 (before any provider is asked)."""
    if candidate.veto is not None:
        candidate.plausibility = 0.0
        return
    score = BASE[candidate.form]
    reasons = candidate.reasons
    if cues.strong:
        score += STRONG_BONUS
        reasons.append("strong cue (#np, now playing, premiere ...)")
    elif cues.music:
        score += MUSIC_BONUS
        reasons.append("music cue")
    if candidate.quoted:
        score += QUOTED_BONUS
        reasons.append("quoted title")
    if cues.link:
        score += LINK_BONUS
        reasons.append("music link")
    known = cues.known_credit(candidate.artist)
    artist_name_like = _name_like(candidate.artist) or known  # "deadmau5", "beabadoobee"
    names = artist_name_like and (candidate.quoted or _name_like(candidate.title))
    titlecase = _titlecase(candidate.artist) and (candidate.quoted or _titlecase(candidate.title))
    # "Taylor Swift – cardigan": an artist the catalog knows, alone with a short lowercase title
    styled_title = known and candidate.bare and not candidate.quoted and _plain_lowercase_title(candidate.title)
    cut = "chatter cut after the title" in candidate.reasons
    if candidate.form == "dash" and names and titlecase and not cut:
        score += NAME_PAIR_BONUS
        reasons.append("reads like a credit (Name - Title)")
    if not names and not cues.strong:
        if cues.lowercase_post and lookup is not None and lookup.knows_artist(candidate.artist):
            reasons.append("all-lowercase post, artist known")
        elif styled_title and artist_name_like:
            reasons.append("artist known, a short lowercase title alone after it")
        elif cues.lowercase_post and _lowercase_credit(candidate):
            score += NAME_PAIR_BONUS if candidate.form == "dash" else 0.0
            reasons.append("all-lowercase post, short and reads like artist - title")
        elif cues.lowercase_post and (cues.music or candidate.quoted):
            score -= 0.1
            reasons.append("all-lowercase post")
        else:
            score -= 0.4
            reasons.append("not capitalised like a name")
    if not cues.strong and not cues.lowercase_post:
        if not _titlecase(candidate.artist) and not known:
            score -= 0.2
            reasons.append("artist not title case")
        elif not titlecase and not styled_title and not (known and _titlecase(candidate.title)):
            score -= 0.1
            reasons.append("title not title case")
    if not candidate.quoted and len(candidate.title.split()) > LONG_UNQUOTED_TITLE_WORDS:
        score -= 0.15
        reasons.append("a long unquoted title")
    if cut and not cues.strong:
        score -= 0.1
    if candidate.form in ("quoted_by", "quote_dash") and not (cues.strong or cues.music):
        score -= UNCUED_BY_PENALTY
        reasons.append("“Title” by Name or “Title” - Name with no music cue (a quote, a book or a film reads the same)")
    if cues.off_topic and not cues.strong:
        score -= OFF_TOPIC_PENALTY
        reasons.append("sport, schedule, travel or money talk in the post")
    elif cues.off_topic_emoji and not cues.strong:
        score -= OFF_TOPIC_EMOJI_PENALTY
        reasons.append("a sport or travel emoji in the post")
    score -= candidate.plausibility_penalty
    if CHATTER.search(candidate.artist):
        score -= 0.05
        reasons.append("a common word in the artist")
    candidate.plausibility = round(max(0.0, min(score, 0.99)), 3)


# Words that make a lowercase title read like a sentence about the artist ("Adele - sold out again").
LOWERCASE_TITLE_SENTENCE = re.compile(
    r"\b(?:is|was|were|are|am|been|be|can't|cannot|don't|doesn't|isn't|should|would|could|will|gonna|wanna"
    r"|lol|lmao|omg|tbh|imo|smh|thanks|please|pls|today|tomorrow|yesterday|tonight|everyone|anyone|guys|folks"
    r"|new|next|latest|announced?|sold|tickets?|tour|dates|cancel+ed|confirmed|again|finally|just|who|what"
    r"|why|how|she|he|they|it's|she's|he's|they're|you're|we're|i'm|via|here)\b",
    re.I,
)


def _plain_lowercase_title(title: str) -> bool:
    """A short title with no sentence words: how artists who write in lowercase name their songs."""
    words = title.split()
    return (
        1 <= len(words) <= 6
        and title[:1].islower()
        and not LOWERCASE_TITLE_SENTENCE.search(title)
        and not TITLE_CHATTER.search(title)
    )


def _lowercase_credit(candidate: Candidate) -> bool:
    """ "porches - rangerover": a short name and a short title, no sentence words in the name. A title that
    goes on after a comma or holds a number ("moving day - 4th floor, no lift") reads like a note."""
    words = candidate.artist.split()
    return (
        len(words) <= 4
        and not CHATTER.search(candidate.artist)
        and not any(word in LOWERCASE_SENTENCE_WORDS for word in words)
        and not candidate.comma_tail
        and (candidate.quoted or not re.search(r"\d", candidate.title))
        and (candidate.quoted or len(candidate.title.split()) <= (6 if candidate.bare else 5))
        and not any(word in LOWERCASE_SENTENCE_TITLE_WORDS for word in candidate.title.split())
    )


# ... and in the title: "remember that thing from 2009" is a sentence.
LOWERCASE_SENTENCE_TITLE_WORDS = frozenset({"that", "thing", "things", "stuff", "please", "because", "remember"})
_LOWERCASE_SENTENCE_WORDS = (
    "it's its ok okay but who what why how when where mood vibes weather energy giving girl dinner asked "
    "one more just so very really much too all no yes not if then than also new"
)
LOWERCASE_SENTENCE_WORDS = frozenset(_LOWERCASE_SENTENCE_WORDS.split())


# --- tidying ---------------------------------------------------------------------------------------------

NAME_CONNECTORS = {
    "&", "and", "of", "the", "x", "de", "la", "le", "del", "von", "van", "der", "y", "+", "a", "for", "in", "da",
    "du", "di", "los", "las", "el",
}  # fmt: skip


NAME_PARTICLES = {"the", "de", "la", "le", "del", "von", "van", "der", "da", "du", "di", "los", "las", "el"}


def _capitalised_run(words_before: str) -> str:
    """ "Kids are dictators in Young Fathers" → "Young Fathers": the name that owns the title.

    An all-lowercase post keeps everything (the lead-in and chatter vetoes decide then)."""
    words = words_before.split()
    if not words or not (words[-1][:1].isupper() or words[-1][:1].isdigit()):
        return words_before
    start = len(words)
    while start > 0:
        word = words[start - 1]
        if word[:1].isupper() or word[:1].isdigit() or word.lower() in NAME_CONNECTORS:
            start -= 1
        else:
            break
    while start < len(words) and words[start].lower() in NAME_CONNECTORS - NAME_PARTICLES:
        start += 1  # a name does not start with "and" or "of"
    return " ".join(words[start:])


def _leading_capitalised_run(words_after: str) -> str:
    """ "Beach House came out of nowhere" → "Beach House" (an all-lowercase start keeps everything)."""
    words = words_after.split()
    if not words or not (words[0][:1].isupper() or words[0][:1].isdigit()):
        return words_after
    end = 0
    while end < len(words):
        word = words[end]
        if word[:1].isupper() or word.isdigit() or word.lower() in NAME_CONNECTORS or word.endswith(".."):
            end += 1
        else:
            break
    while end > 0 and words[end - 1].lower() in NAME_CONNECTORS:
        end -= 1  # a name does not end with "and" or "of"
    return " ".join(words[:end])


def _tidy_artist(artist: str, *, lead_in: bool, tail_run: bool = False) -> str:
    artist = artist.strip()
    if lead_in:
        lead = LEAD_IN.match(artist)
        if lead and not lead.group(0).strip().isupper():  # "LOVE SICK" is a band, "Loving X" a lead-in
            artist = artist[lead.end() :]
        artist = re.sub(r"^.*[,;!?|]\s+(?=\S)", "", artist) if not re.search(r",\s+[A-Z]", artist) else artist
    else:
        artist = ARTIST_STOP.sub("", artist)
    if tail_run:
        artist = _capitalised_run(artist)
    artist = FEATURING.sub("", artist)
    artist = re.sub(r"\s*\([A-Z]{2}\)$", "", artist)  # "Sigrid (NO)": a blog's country tag
    artist = re.sub(r"^(?:by|from|the\s+band|the\s+artist|introducing)\s+", "", artist, flags=re.I)
    if re.fullmatch(r"(?:introducing|premiere|new|listen|video|review|streaming|exclusive|watch)", artist, re.I):
        return ""
    artist = _strip_edges(artist, keep_dots=True)
    if _cut_lowercase_tail(artist, min_tail=2) != artist:
        return ""  # "Back on the track - X": a capitalised word and then a sentence is not a name
    return artist


def _tidy_title(title: str, *, quoted: bool, cut_tail: bool) -> str:
    title = title.strip()
    if not quoted:
        title = ASIDE_BRACKET.sub("", title)
        title = _cut_after_ellipsis(title)
        title = _cut_title_tail(title)
        title = re.sub(r"\s*(?:[;!?|].*|,\s+(?=[a-z]).*)$", "", title)
    title = _strip_edges(title)
    for _ in range(3):  # "Title (feat. Y) [Official Video]"
        title = BRACKET_VERSION.sub("", title)
        title = DASH_VERSION.sub("", title)
        title = LABEL_BRACKET.sub("", title) if not quoted else title
    title = FEATURING.sub("", title)
    title = re.sub(r"\s*[(\[](?:(?:19|20)\d\d|\d{1,3})[)\]]$", "", title)  # "Younger (2018)", "Take (2)"
    title = _strip_edges(title)
    if quoted or not cut_tail:
        return title
    return _strip_edges(_cut_lowercase_tail(title))


def _cut_after_ellipsis(title: str) -> str:
    """ "Harmony Hall ... still perfect", "Retrograde... goosebumps every time": English chatter after "...";
    "Je t'aime... moi non plus" keeps its words."""
    match = re.search(r"\s*(?:\.{3}|…)\s+(?=[a-z])(?P<tail>.*)$", title)
    if match is None:
        return title
    glued = match.start() > 0 and title[match.start() - 1] != " "  # "Je t'aime... moi non plus"
    if glued and not any(word.lower() in CHATTER_TAIL_WORDS for word in match.group("tail").split()):
        return title
    return title[: match.start()]


def _cut_title_tail(title: str) -> str:
    """Cut at the first chatter phrase ("is unreal", "on a rainy day") unless a capitalised word follows it:
    in "Walking on a Dream" the words belong to the title."""
    for match in TITLE_TAIL.finditer(title):
        rest = title[match.end() :]
        if re.match(r"\s+[A-Z]", rest) and not CALENDAR_WORD.match(rest.strip()):
            continue
        return title[: match.start()]
    return title


def _cut_lowercase_tail(title: str, min_tail: int = 3) -> str:
    """ "Creep is such a vibe" → "Creep": a capitalised title followed by ≥ 3 lowercase words of chatter."""
    words = title.split()
    if not words or not words[0][:1].isupper():
        return title
    tail = 0
    for word in reversed(words):
        if word[:1].islower():
            tail += 1
        else:
            break
    if not (min_tail <= tail < len(words)) or not any(w.lower() in CHATTER_TAIL_WORDS for w in words[-tail:]):
        return title  # "Le temps de l'amour" keeps its lowercase words: they are no English chatter
    return " ".join(words[: len(words) - tail])


def _strip_edges(value: str, *, keep_dots: bool = False) -> str:
    """Quotes, dashes and punctuation off both ends, runs of space made one ("Help!" loses its "!": the
    enricher's matching ignores punctuation anyway; "P!nk" keeps hers; "Fred again.." keeps its dots)."""
    edge = f"{OPEN_QUOTES}{CLOSE_QUOTES}-–—‒−,:;!?*_~|/\\ \t" + ("" if keep_dots else ".")
    value = re.sub(r"\s+", " ", value).strip(edge)
    if keep_dots and value.endswith(".") and not value.endswith(".."):
        value = value.rstrip(".") if not re.search(r"\b[A-Z]\.$|\.[A-Z]\.$", value) else value
    return value


def _quoted_text(match: re.Match[str]) -> str:
    return next(group for group in match.groups() if group is not None)


def _fully_quoted(side: str) -> str | None:
    match = QUOTED.fullmatch(side)
    return _quoted_text(match) if match else None


def _leading_quoted(side: str) -> str | None:
    """“Title” (Official Video) or “Title” out now: the quoted part is the title."""
    match = QUOTED.match(side)
    return _quoted_text(match) if match else None


def _calendar_pair(artist: str, title: str) -> bool:
    """ "Mon - Fri", "June 3 - June 6", "Open Mon - Fri 9-5"; but "Caribou - Sun" is a song."""
    if CALENDAR_WORD.search(artist) and CALENDAR_WORD.search(title):
        return True
    if DAY_AND_MONTH.search(artist):
        return True  # "Live Dates 28 April - Are You Listening?"
    for side, other in ((artist, title), (title, artist)):
        if CALENDAR_SIDE.match(side) and (re.search(r"\d", other) or re.search(r"\d", side)):
            return True  # "June 14 - Dallas", "Mon - Fri 9-5"
    return False


def _places(side: str) -> bool:
    words = re.findall(r"\w+", side.casefold())
    return bool(words) and all(word in PLACE_WORDS for word in words)


def _looks_like_number_or_time(side: str) -> bool:
    if not re.search(r"[^\W\d_]", side):
        return True  # no letter at all: 2, 10:30, $15
    return bool(TIME_OR_NUMBER.search(side))


def _name_like(side: str) -> bool:
    """Names start with a capital or a digit ("99 Problems"); a lowercase start reads like a sentence."""
    first = side.lstrip(f"{OPEN_QUOTES}{CLOSE_QUOTES}([ ")[:1]
    if not first:
        return False
    return first.isupper() or first.isdigit() or not first.isalpha() or (not first.isascii() and not first.islower())


_SMALL_TITLE_WORDS = (
    "to on at is it or an with en me you by from into up out over under as than off no not n 'n' so but if"
)
SMALL_TITLE_WORDS = frozenset(_SMALL_TITLE_WORDS.split())
# Lowercase words found inside band names: one of these before a capitalised run is no lead-in.
NAME_MIDDLE_WORDS = NAME_CONNECTORS | SMALL_TITLE_WORDS | {"from", "at", "but", "with", "by", "without", "against"}
NAME_MIDDLE_WORDS |= {"featuring", "feat", "ft", "presents", "meets", "versus", "vs"}


def _titlecase(side: str) -> bool:
    """Every word but the small ones capitalised (or none cased at all: 山下達郎)."""
    for word in side.split():
        letters = [ch for ch in word if ch.isalpha()]
        if not letters or not letters[0].islower():
            continue
        if word.lower() not in NAME_CONNECTORS | SMALL_TITLE_WORDS:
            return False
    return True


def _key(value: str) -> str:
    return re.sub(r"\W+", " ", value.casefold()).strip()
