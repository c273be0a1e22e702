"""Spot the song a social post names: "Artist - Title", "“Title” by Artist", "Artist's 'Title'", #np ...

Precision matters more than recall here: a wrong song produces embarrassing commentary, a missed one
only costs a post. So every form needs a music cue (#np, "now playing", "new single", quotes, a Spotify
link, a note emoji ...) and a long list of negative cues (scores, schedules, times, dates, prices, lists,
sports talk) vetoes a match. The confidence grows with the cues that back a match.

Plain regular expressions over a cleaned copy of the text, read top to bottom:
clean → find cues → try the forms from the most to the least explicit → tidy and veto the candidate.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

from pydantic import BaseModel, Field

__all__ = ["Detection", "detect_song"]


class Detection(BaseModel):
    """What detect_song found. artist and title are both None when no song is named."""

    artist: str | None = None
    title: str | None = None
    spotify_track_id: str | None = None
    confidence: float = Field(default=0.0, ge=0, le=1)


# --- links ---------------------------------------------------------------------------------------------

SPOTIFY_TRACK = re.compile(
    r"(?:open\.spotify\.com/(?:intl-[a-z]{2,5}/)?(?:embed/)?track/|spotify:track:)([A-Za-z0-9]{22})(?![A-Za-z0-9])"
)
URL = re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9.-]+\.(?:com|be|fm|io|ly|co|net|org)/\S*|spotify:\w+:\w+", re.I)

# --- characters ----------------------------------------------------------------------------------------

DASHES = r"\-–—‒−"  # for use inside a [character class]
# A separator is a dash (or two) with space around it; "9-5", "Jay-Z" and "2024-05-01" are not.
SEPARATOR = re.compile(rf"\s+[{DASHES}]{{1,2}}\s+")
OPEN_QUOTES = "\"'“‘«„‚»「『"
CLOSE_QUOTES = "\"'”’»“‘«」』"
QUOTED = re.compile(
    rf"(?:(?<=^)|(?<=[\s(\[:{DASHES}]))[{OPEN_QUOTES}]"
    rf"(?P<quoted>[^\"“”«»„「」『』\n]{{1,100}}?)"
    rf"[{CLOSE_QUOTES}](?=$|[\s.,!?;:)\]{DASHES}])"
)

# --- cues ----------------------------------------------------------------------------------------------

STRONG_CUE = re.compile(
    r"#(?:np|nowplaying|nowlistening|nowspinning|currentlyplaying)\b"
    r"|\bnow\s+(?:playing|listening(?:\s+to)?|spinning)\b|\bnp\s*:|\blistening\s+to\b|\bcurrently\s+playing\b"
    r"|\bon\s+repeat\b",
    re.I,
)
CUE_HASHTAG = re.compile(r"#(?:np|nowplaying|nowlistening|nowspinning|currentlyplaying)\b\s*:?", re.I)
MUSIC_CUE = re.compile(
    r"\b(?:new\s+(?:single|song|track|music|video|ep|album)|single|songs?|tracks?|tunes?|listen\w*"
    r"|banger|jams?|album|ep|lp|remix|music\s+video|playlist|spotify|bandcamp|soundcloud|premiere\w*"
    r"|sotd|songoftheday|newmusic|nowlistening|music|spinning|playing)\b"
    r"|[🎵🎶🎧🎸🎤🎹🥁🎷🎺🎻📻💿📀♪♫♬]",
    re.I,
)
# Talk that shares the "A - B" shape with songs: games, schedules, streams.
OFF_TOPIC = re.compile(
    r"\b(?:vs\.?|v\.|game|match|kick-?off|score[sd]?|half-?time|full-?time|ft\s*:|league|derby|goals?"
    r"|playoffs?|nba|nfl|nhl|mlb|fc|innings?|quarter|overtime|tonight'?s\s+game|q\s*&\s*a|ama"
    r"|live\s*now|livestream|live\s+stream|stream(?:ing)?\s+(?:now|starts?)|webinar|meeting|shift"
    r"|open(?:ing)?\s+hours|office\s+hours|price[sd]?|sale|discount|off\b|deadline)\b"
    r"|\s@\s|\bw/\s",  # tour dates: "June 14 - Dallas, TX @ The Venue w/ Support"
    re.I,
)
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
# Never a song, even after "listening to": podcasts, talks, the news; album posts name no single song.
NOT_A_SONG = re.compile(
    r"\b(?:podcast|episode|audiobook|audio\s*book|lecture|sermon|interview|webinar|news|radio\s+show"
    r"|full\s+album|album\s+review|tracklist|setlist)\b",
    re.I,
)
ALBUM_WORDS = re.compile(r"\b(?:album|ep|lp|mixtape|record)\b", re.I)
SONG_WORDS = re.compile(r"\b(?:song|single|track|tune|banger|jam)s?\b", re.I)
ALBUM_IN_TITLE = re.compile(r"[(\[]\s*(?:album|ep|lp|mixtape|full\s+album|\d+\s+tracks?)\s*[)\]]", re.I)
DETERMINER_START = re.compile(r"^(?:a|an|my|your|his|her|our|their|some|this|that|these|those)\s")
TIME_OR_NUMBER = re.compile(
    r"\d{1,2}[:.]\d{2}|\b\d{1,2}\s*(?:am|pm)\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b|^[\d\s.,:/%$€£+x×-]+[a-z]{0,3}$", re.I
)
# A side that is only a call to action or a pointer is not a title: "Listen to 'X' - below", "- Enjoy!"
NOT_A_TITLE = re.compile(
    r"^(?:below|above|here|now|link|links|this|that|it|enjoy|thanks|listen|watch|stream|download|more|tickets"
    r"|link\s+in\s+bio|check\s+it\s+out|out\s+now|coming\s+soon|soon|tbc|tba)$",
    re.I,
)

# --- versions and credits that are not part of the title ------------------------------------------------

VERSION_WORDS = (
    r"remix|rmx|mix|edit|version|live|remaster(?:ed)?|official|video|audio|lyrics?|visuali[sz]er|acoustic"
    r"|demo|instrumental|feat\.?|ft\.?|featuring|prod\.?|produced|explicit|clean|mono|stereo|hd|hq|4k"
    r"|session|sessions|unplugged|bonus\s+track|dub|rework|bootleg|cover|extended|original"
)
# "(X Remix)", "[Official Video]", "(Live at Wembley)", "(feat. Y)" at the end.
BRACKET_VERSION = re.compile(rf"\s*[(\[][^()\[\]]*\b(?:{VERSION_WORDS})\b[^()\[\]]*[)\]]\s*$", re.I)
# "- Radio Edit", "- Live at Wembley", "- 2011 Remaster", "- X Remix" at the end (the version word last,
# so "Lana Del Rey - Video Games" keeps its title).
DASH_VERSION_WORDS = (
    r"remix|rmx|mix|edit|version|remaster(?:ed)?|acoustic|demo|instrumental|mono|stereo|unplugged|rework|bootleg|dub"
)
DASH_VERSION = re.compile(
    rf"\s+[{DASHES}]{{1,2}}\s+(?:(?:[\w&'.]+\s+){{0,4}}(?:{DASH_VERSION_WORDS})(?:\s+(?:19|20)\d\d)?"
    rf"|live(?:\s+(?:at|from|in|on)\s+[^{DASHES}]{{1,60}})?)\s*$",
    re.I,
)
BRACKET_VERSION_ANYWHERE = re.compile(rf"\s*[(\[][^()\[\]]*\b(?:{VERSION_WORDS})\b[^()\[\]]*[)\]]", re.I)
FEATURING = re.compile(r"\s+(?:\(|\[)?(?:feat\.?|ft\.?|featuring|with\s+special\s+guest)\s.*$", re.I)

# What a post says after a title that is not part of it.
TITLE_TAIL = re.compile(
    # lowercase only: in "Odds Are Good" and "There Are A Thousand" the words belong to the title
    r"\s+(?:(?-i:(?:is|are)\s+(?:out|here|live|a|an|such|so|the|my|still|on|now|just|amazing|incredible|great"
    r"|good|fire|perfect|beautiful|gorgeous|stunning|everything|brilliant|lovely))\b"
    r"|out\s+now|on\s+(?:spotify|youtube|repeat|bandcamp|apple\s+music|soundcloud|tidal|deezer|loop)"
    r"|via\b|off\s+(?:the|their|his|her|my|this|that)\b|from\s+(?:the|their|his|her)\b|available\b"
    r"|(?-i:on\s+(?:a|the|my|this|an))\b|never\s+gets\s+old|hits\s+different|slaps|goes\s+hard|what\s+a\b|right\s+now|again\b|today\b"
    r"|tonight\b|this\s+(?:morning|evening|week)|all\s+day|and\s+(?:it|i|we)\b|because\b|cause\b|🔥)"
    r".*$",
    re.I,
)
# What a post says before an artist: "Can't stop playing Radiohead - Creep".
LEAD_IN = re.compile(
    r"^.*?\b(?:playing|listening\s+to|listen\s+to|spinning|blasting|hearing|heard|check(?:ing)?\s+out"
    r"|loving|love|obsessed\s+with|recommend(?:ing)?|stream(?:ing)?|queue(?:d)?\s+up|discovered"
    r"|new\s+(?:single|song|track|music|video|ep|album)\s+(?:from|by)|premiere\s+(?:from|of)|is)\s+",
    re.I,
)
ARTIST_STOP = re.compile(
    r"\s+(?:on|from|off|via|is|are|and\s+(?:it|i|we)|out|feat\.?|ft\.?|featuring|with\s+special)\b.*$"
    r"|[,;:!?|(\[].*$",
    re.I,
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
TITLE_CHATTER = re.compile(r"\b(?:lol|lmao|omg|tbh|imo|smh|thanks|please|guys|folks|here's|there's)\b", re.I)
GENERIC_WORDS = re.compile(r"\b(?:song|songs|track|tracks|album|single|playlist|music|tune|tunes)\b", re.I)
SENTENCE_END = re.compile(
    r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)(?<!\bJr)(?<!\bvs)(?<!\bVol)(?<!\bfeat)(?<!\bft)(?<!\bInc)"
    r"(?<!\bNo)(?<!\b[A-Z])(?<!\b[A-Z][a-z])[.!?]+\s+"
)

MAX_TEXT = 2_000  # characters of a post we read
MAX_QUOTES = 12  # quoted spans we consider per form
NEAR = 120  # characters around a quoted title where its artist may be
MAX_ARTIST_WORDS = 6
MAX_TITLE_WORDS = 10
MAX_UNQUOTED_TITLE_WORDS = 7


class _Candidate(BaseModel):
    artist: str
    title: str
    form: str  # which form matched; decides the base confidence
    quoted: bool


BASE_CONFIDENCE = {"quoted_by": 0.6, "possessive": 0.6, "dash": 0.45, "cue_by": 0.55}


def detect_song(text: str) -> Detection:
    """The song a post names, or a Detection with artist and title None (and confidence 0)."""
    track_ids = SPOTIFY_TRACK.findall(text or "")
    track_id = track_ids[0] if len(set(track_ids)) == 1 else None
    strong = bool(STRONG_CUE.search(text or "")) or track_id is not None
    without_links = URL.sub(" ", text or "")
    music = strong or bool(
        MUSIC_CUE.search(without_links)
        or BRACKET_VERSION_ANYWHERE.search(without_links)
        or DASH_VERSION.search(without_links)
    )
    off_topic = bool(OFF_TOPIC.search(without_links))
    # A post names its song early; the cap keeps the cost of a 20,000-character post bounded.
    cleaned = _clean((text or "")[:MAX_TEXT])

    candidate = _find_candidate(cleaned, strong=strong, music=music)
    album_post = bool(ALBUM_WORDS.search(without_links)) and not SONG_WORDS.search(without_links)
    vetoed = NOT_A_SONG.search(without_links) or ((off_topic or album_post) and not strong)
    if candidate is None or vetoed:
        return Detection(spotify_track_id=track_id)
    confidence = BASE_CONFIDENCE[candidate.form]
    confidence += 0.3 if strong else 0.1 if music else 0.0
    confidence += 0.1 if candidate.quoted else 0.0
    confidence += 0.05 if track_id else 0.0
    return Detection(
        artist=candidate.artist,
        title=candidate.title,
        spotify_track_id=track_id,
        confidence=round(min(confidence, 0.99), 2),
    )


def _clean(text: str) -> str:
    """Drop links, emoji and decorative hashtags; keep line breaks as clause boundaries."""
    text = unicodedata.normalize("NFC", text)
    text = URL.sub(" ", text)
    text = re.sub(r"(?<!\w)[*_]+|[*_]+(?!\w)", "", text)  # **bold**, _italic_
    text = re.sub(r"(?m)^\s*#{1,6}\s+", "", text)  # "## Heading"
    text = CUE_HASHTAG.sub("\n", text)
    text = re.sub(r"(?i)\bnow\s+playing\s*:|\bnp\s*:|\bnow\s+listening(?:\s+to)?\s*:", "\n", text)
    # Emoji, symbols and joiners become spaces; letters, digits, punctuation and $ (A$AP) stay.
    # Emoji and symbols end a clause ("This song 🎧 Röyksopp - Eple") unless they sit next to a dash.
    text = "".join(
        " • " if unicodedata.category(ch) in ("So", "Sk", "Cf", "Co", "Cn") and ch not in "`´" else ch for ch in text
    )
    text = re.sub(r"(?:\s*•)+", " •", text)
    text = re.sub(rf"•\s*(?=[{DASHES}]{{1,2}}\s)|(?<=\s[{DASHES}])\s*•|(?<=\s[{DASHES}]{{2}})\s*•", " ", text)
    # Version brackets anywhere ("Do I Wanna Know? [Official Video]") before sentences are split.
    text = BRACKET_VERSION_ANYWHERE.sub(" ", text)
    text = text.replace("\u00a0", " ")
    # A run of hashtags at either end of a line is decoration; inside a sentence keep the word.
    lines = []
    for line in text.splitlines():
        line = re.sub(r"(?:\s*#\w+)+\s*$", "", line)
        line = re.sub(r"^\s*(?:#\w+\s*)+", "", line)
        line = re.sub(r"^\s*\[[^\]]{1,30}\]\s*:?\s*", "", line)  # "[Premiere] Artist - Title"
        line = re.sub(r"#(\w)", r"\1", line)
        line = re.sub(r"@(\w)", r"\1", line)
        line = re.sub(r"^[\s•]+|[\s•]+$", "", line)
        lines.append(re.sub(r"[ \t]+", " ", line).strip())
    return "\n".join(line for line in lines if line)


def _find_candidate(cleaned: str, *, strong: bool, music: bool) -> _Candidate | None:
    """Try the forms from the most explicit to the least; several different songs mean a list: none."""
    for finder in (_quoted_by, _possessive, _dash, _cue_by):
        found = finder(cleaned, strong=strong, music=music)
        if found is None:
            continue
        distinct = {(_key(c.artist), _key(c.title)) for c in found}
        if len(distinct) != 1:
            return None
        return found[0]
    return None


def _quoted_by(cleaned: str, *, strong: bool, music: bool) -> list[_Candidate] | None:
    """“Title” by Artist"""
    found = []
    for match in itertools.islice(QUOTED.finditer(cleaned), MAX_QUOTES):
        rest = cleaned[match.end() : match.end() + NEAR]
        by = re.match(r"\s*,?\s+by\s+(.+)", rest, re.I)
        if by is None:
            continue
        artist = _leading_capitalised_run(ARTIST_STOP.sub("", by.group(1)))
        candidate = _accept(artist, match.group("quoted"), "quoted_by", True, strong, music)
        if candidate:
            found.append(candidate)
    return found or None


def _possessive(cleaned: str, *, strong: bool, music: bool) -> list[_Candidate] | None:
    """Artist's 'Title', Artist’s new single “Title”"""
    found = []
    for match in itertools.islice(QUOTED.finditer(cleaned), MAX_QUOTES):
        before = cleaned[max(0, match.start() - NEAR) : match.start()]
        owner = re.search(
            r"(?P<artist>[^\n.!?:;,]+?)['’]s?\s+(?i:(?:new|latest|upcoming|classic|brilliant|gorgeous)\s+)*"
            r"(?i:(?:single|song|track|tune|cut|banger|video|anthem|ballad|jam)\s+)?$",
            before,
        )
        if owner is None:
            continue
        artist = _capitalised_run(owner.group("artist"))
        if not (artist.endswith("s") or re.search(r"['’]s\s", owner.group(0))):
            continue  # a bare apostrophe is possessive only after an s: "The Strokes' 'Reptilia'"
        candidate = _accept(artist, match.group("quoted"), "possessive", True, strong, music, lead_in=True)
        if candidate:
            found.append(candidate)
    return found or None


NAME_CONNECTORS = {"&", "and", "of", "the", "x", "de", "la", "le", "del", "von", "van", "y", "+"}


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
    while start < len(words) and words[start].lower() in {"&", "and", "of", "x", "y", "+"}:
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
        if word[:1].isupper() or word[:1].isdigit() or word.lower() in NAME_CONNECTORS:
            end += 1
        else:
            break
    while end > 0 and words[end - 1].lower() in NAME_CONNECTORS:
        end -= 1  # a name does not end with "and" or "of"
    return " ".join(words[:end])


def _dash(cleaned: str, *, strong: bool, music: bool) -> list[_Candidate] | None:
    """Artist - Title, Artist – “Title”, “Title” — Artist; one per clause, one separator per clause."""
    found = []
    for clause in _clauses(cleaned):
        clause = DASH_VERSION.sub("", clause)
        parts = SEPARATOR.split(clause)
        if len(parts) < 2:
            continue
        if len(parts) > 2:
            return None  # "A - B - C": a list or a schedule, not a song
        left, right = parts
        if re.search(r"\d$", left.strip()) and re.match(r"\d", right.strip()):
            return None  # "Arsenal 2 - 1 Chelsea", "10 - 20"
        left_quoted = _fully_quoted(left.strip())
        right_quoted = _fully_quoted(right.strip()) or _leading_quoted(right.strip())
        if left_quoted and not right_quoted:
            artist, title, quoted = right, left_quoted, True  # “Title” - Artist
        elif QUOTED.search(left):
            return None  # 'X’s single “Y” is about Z – Magazine': prose around a quote, not "Artist - Title"
        else:
            artist, title, quoted = left, right_quoted or right, right_quoted is not None
        if not quoted and not music:
            continue  # generic "A - B" chatter
        candidate = _accept(artist, title, "dash", quoted, strong, music, lead_in=True)
        if candidate is None:
            if strong or music:
                return None  # a clause shaped like a song but vetoed: do not guess elsewhere
            continue
        found.append(candidate)
    return found or None


def _cue_by(cleaned: str, *, strong: bool, music: bool) -> list[_Candidate] | None:
    """listening to Title by Artist (only after a strong cue, since "photo by Jane" is not a song)"""
    if not strong:
        return None
    found = []
    for clause in _clauses(cleaned):
        match = re.match(
            r"^(?:.*?\b(?:listening\s+to|playing|spinning|on\s+repeat:?)\s+)?(?P<title>.+?)\s+by\s+(?P<artist>.+)$",
            clause,
            re.I,
        )
        if match is None:
            continue
        candidate = _accept(match.group("artist"), match.group("title"), "cue_by", False, strong, music)
        if candidate:
            found.append(candidate)
    return found or None


def _clauses(cleaned: str) -> list[str]:
    clauses = []
    for line in cleaned.split("\n"):
        for piece in re.split(r"\s+\|\s+|\s*//\s*|\s*•\s*|:\s+", line):
            clauses.extend(p.strip() for p in SENTENCE_END.split(piece) if p.strip())
    return clauses


def _accept(
    artist: str,
    title: str,
    form: str,
    quoted: bool,
    strong: bool,
    music: bool,
    *,
    lead_in: bool = False,
) -> _Candidate | None:
    """Tidy both sides and apply every veto; None when the pair does not read like a song."""
    artist = _tidy_artist(artist, lead_in=lead_in)
    untrimmed_title = _tidy_title(title, quoted=quoted, cut_tail=False)
    title = _tidy_title(title, quoted=quoted, cut_tail=True)
    if not artist or not title:
        return None
    if title != untrimmed_title and not strong:
        return None  # "Before - After photos of the kitchen": only a strong cue lets us cut chatter off
    if not strong and not _name_like(artist):
        return None  # "the group's “Patagonia”", "context -- “...”": names are capitalised
    if NOT_A_TITLE.match(title) or (re.search(r"['’]s?$", title) and not quoted):
        return None  # "Listen to 'Low Beam' - below", "Back on the track - GoldLink's"
    if DETERMINER_START.match(artist) or ALBUM_IN_TITLE.search(title):
        return None  # "“Hello” by a stranger", "OK Computer (album)"
    if _looks_like_number_or_time(artist):
        return None
    if _looks_like_number_or_time(title) and not (strong and re.fullmatch(r"\d{1,4}", title)):
        return None  # "#np Prince - 1999" is a song, "Pages 10 - 20" is not
    if _calendar_pair(artist, title):
        return None
    if len(artist.split()) > MAX_ARTIST_WORDS:
        return None
    title_limit = MAX_TITLE_WORDS if quoted else MAX_UNQUOTED_TITLE_WORDS
    if len(title.split()) > title_limit:
        return None
    if CHATTER.search(artist) or (not quoted and TITLE_CHATTER.search(title)):
        return None
    if not strong and (GENERIC_WORDS.search(artist) or (not quoted and GENERIC_WORDS.search(title))):
        return None  # "Pros - cons of this track"
    if not strong and not quoted and not (_name_like(artist) and _name_like(title)):
        return None
    if not re.search(r"\w", artist) or not re.search(r"\w", title):
        return None
    return _Candidate(artist=artist, title=title, form=form, quoted=quoted)


def _tidy_artist(artist: str, *, lead_in: bool) -> str:
    artist = artist.strip()
    if lead_in:
        lead = LEAD_IN.match(artist)
        if lead and not lead.group(0).strip().isupper():  # "LOVE SICK" is a band, "Loving X" a lead-in
            artist = artist[lead.end() :]
    artist = ARTIST_STOP.sub("", artist) if not lead_in else re.sub(r"^.*[,;!?|]\s*", "", artist)
    artist = FEATURING.sub("", artist)
    artist = re.sub(r"\s*\([A-Z]{2}\)$", "", artist)  # "Sigrid (NO)": a blog's country tag
    artist = re.sub(r"^(?:by|from|the\s+band|the\s+artist|introducing)\s+", "", artist, flags=re.I)
    if re.fullmatch(r"(?:introducing|premiere|new|listen|video|review|streaming|exclusive)", artist, re.I):
        return ""
    artist = _strip_edges(artist)
    if _cut_lowercase_tail(artist, min_tail=2) != artist:
        return ""  # "Back on the track - X": a capitalised word and then a sentence is not a name
    return artist


def _tidy_title(title: str, *, quoted: bool, cut_tail: bool) -> str:
    title = title.strip()
    if not quoted:
        title = TITLE_TAIL.sub("", title)
        title = re.sub(r"\s*[,;!?|].*$", "", title)
    title = _strip_edges(title)
    for _ in range(3):  # "Title (feat. Y) [Official Video]"
        title = BRACKET_VERSION.sub("", title)
        title = DASH_VERSION.sub("", title)
    title = FEATURING.sub("", title)
    title = re.sub(r"\s*[(\[](?:19|20)\d\d[)\]]$", "", title)  # "Younger (2018)"
    title = _strip_edges(title)
    if quoted or not cut_tail:
        return title
    return _strip_edges(_cut_lowercase_tail(title))


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
    return " ".join(words[: len(words) - tail]) if min_tail <= tail < len(words) else title


def _strip_edges(value: str) -> str:
    """Quotes, dashes and punctuation off both ends, runs of space made one ("Help!" loses its "!": the
    enricher's matching ignores punctuation anyway; "P!nk" keeps hers)."""
    edge = f"{OPEN_QUOTES}{CLOSE_QUOTES}-–—‒−.,:;!?*_~|/\\ \t"
    return re.sub(r"\s+", " ", value).strip(edge)


def _fully_quoted(side: str) -> str | None:
    match = QUOTED.fullmatch(side)
    return match.group("quoted") if match else None


def _leading_quoted(side: str) -> str | None:
    """“Title” (Official Video) or “Title” out now: the quoted part is the title."""
    match = QUOTED.match(side)
    return match.group("quoted") if match else None


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


def _looks_like_number_or_time(side: str) -> bool:
    if not re.search(r"[^\W\d_]", side):
        return True  # no letter at all: 2, 10:30, $15
    return bool(TIME_OR_NUMBER.search(side))


def _name_like(side: str) -> bool:
    """Names are Capitalised or ALL CAPS; a lowercase start reads like a sentence."""
    first = next((ch for ch in side if ch.isalpha()), "")
    return first.isupper() or first == ""


def _key(value: str) -> str:
    return re.sub(r"\W+", " ", value.casefold()).strip()
