"""Find the artist and the song title in a blog post's headline.

Blogs write the same fact in many shapes: "Artist - Title", "Artist – ‘Title’", "“Title” by Artist",
"Artist: Title", "Premiere: Artist – Title | Blog name", "Artist shares new single “Title”", with
"(feat. X)" or "[Official Video]" stuck on. `parse_song_title` peels off the decorations, then tries the
shapes from the most to the least specific. Everything here is a pure function of its input, so the
listener's song detector can reuse the normalisation helpers.
"""

from __future__ import annotations

import re
import unicodedata

# Dashes people use as separators (hyphen, en/em dashes, minus, figure dash, ...).
_DASH_CHARS = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\uff02"
_SINGLE_QUOTES = "\u2018\u2019\u201a\u201b\u2032\u2039\u203a`\u00b4"

_DASH_TABLE = str.maketrans(dict.fromkeys(_DASH_CHARS, "-"))
_QUOTE_TABLE = str.maketrans({**dict.fromkeys(_DOUBLE_QUOTES, '"'), **dict.fromkeys(_SINGLE_QUOTES, "'")})


def normalise_spaces(text: str) -> str:
    """Collapse every kind of whitespace (including no-break spaces) into single spaces."""
    return " ".join(text.split())


def normalise_dashes(text: str) -> str:
    """Turn every dash-like character into an ASCII hyphen."""
    return text.translate(_DASH_TABLE)


def normalise_quotes(text: str) -> str:
    """Turn curly and angled quotes into ASCII ' and "."""
    return text.translate(_QUOTE_TABLE)


def normalise_headline(text: str) -> str:
    """Unicode NFC, ASCII quotes and dashes, single spaces: the form every rule below expects."""
    text = unicodedata.normalize("NFC", text)
    return normalise_spaces(normalise_quotes(normalise_dashes(text)))


def song_key(artist: str, title: str) -> str:
    """A stable key for one song: lower-case, accents and punctuation folded away."""
    return f"{name_key(artist)}\x1f{name_key(title)}"


def name_key(name: str) -> str:
    """Lower-case ASCII-folded words of a name: 'RÜFÜS ' and 'Rufus' give the same key."""
    folded = unicodedata.normalize("NFKD", normalise_headline(name))
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).casefold()
    folded = folded.replace("&", " and ").replace("'", "")
    return " ".join(re.findall(r"[^\W_]+", folded))


# --- decorations -------------------------------------------------------------------------------------

# Words that make a leading "X:" / "X |" / "[X]" segment an editorial label rather than an artist.
_LABEL_WORDS = {
    "new",
    "music",
    "song",
    "songs",
    "track",
    "tracks",
    "single",
    "singles",
    "premiere",
    "premieres",
    "exclusive",
    "listen",
    "listening",
    "stream",
    "streaming",
    "video",
    "videos",
    "watch",
    "now",
    "playing",
    "pick",
    "picks",
    "of",
    "the",
    "day",
    "week",
    "today",
    "tunes",
    "jam",
    "review",
    "reviews",
    "hot",
    "fresh",
    "first",
    "spin",
    "heard",
    "daily",
    "weekly",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "moods",
    "mood",
    "love",
    "we",
    "serving",
    "this",
    "feeling",
    "remix",
    "remixes",
    "mixtape",
    "ep",
    "lp",
    "album",
    "audio",
    "official",
    "lyric",
    "lyrics",
    "feature",
    "featured",
    "spotlight",
    "discovery",
    "discover",
    "weekend",
    "favorite",
    "favourite",
    "what's",
    "whats",
    "diggin'",
    "digging",
    "this:",
    "it",
    "a",
    "in",
    "women",
    "and",
    "out",
    "presents",
    "premiered",
    "free",
    "download",
    "release",
    "releases",
    "d//e",
    "radar",
    "fix",
    "is",
    "right",
    "morning",
    "evening",
    "night",
    "sounds",
    "sound",
    "cover",
    "covers",
    "artist",
    "artists",
    "indie",
    "electro",
    "downtempo",
    "pop",
    "rock",
    "folk",
    "electronic",
    "hip",
    "hop",
    "rap",
    "soul",
    "house",
    "chill",
    "marketing",
    "buzz",
    "tune",
    "tuesdays",
    "fridays",
    "currently",
    "to",
    "mp3",
    "ambient",
    "track:",
    "band",
    "explains",
    "offerings",
}
_MONTHS = {
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}
# A label that says so by itself wherever it stands in the prefix.
_STRONG_LABEL = re.compile(
    r"\b(premiere|new music|new track|new song|new single|song of the day|track of the day|"
    r"song pick|now playing|listen|stream|streaming|video|single review|exclusive)\b",
    re.IGNORECASE,
)
_FEAT = r"(?:feat|ft|featuring|prod|produced|with)\b\.?"
_PARENS_DROP = re.compile(
    r"\s*[\(\[]\s*(?:" + _FEAT + r"[^\)\]]*|[^\)\]]*\b(?:remix|rework|edit|mix|version|video|audio|visualizer|lyrics?|"
    r"premiere|single|ep|lp|cover|live|demo|out now|stream|prod\.?|remaster(?:ed)?|acoustic|"
    r"instrumental|bootleg|vip|flip|new)\b[^\)\]]*|\d{4}|[A-Z]{2,3}|[^\)\]]*\b(?:genre|disco|funk|pop|rock)"
    r"\b[^\)\]]*/[^\)\]]*)\s*[\)\]]",
    re.IGNORECASE,
)
_TRAILING_FEAT = re.compile(r"\s+(?:feat|ft|featuring|prod)\b\.?\s.*$", re.IGNORECASE)
_SEPARATORS = re.compile(r"\s+(?:-{1,3}|\|{1,2}|/{2,3}|::)\s+|\s*(?:\s-{2,3}\s*|//{1,2}\s)\s*|(?<=\w)-\s+|\s+\|(?=\w)")
_SUFFIX_WORDS = re.compile(
    r"^(?:a song review|song review|review|new music|music|stream|premiere|art|music blog|blog|magazine|"
    r"official (?:music |lyric )?video|lyric video|music video|video|audio|out now|listen|indie shuffle|"
    r"the \d+|\d{4}|free download|new track|track review|single review)$",
    re.IGNORECASE,
)
_BY = re.compile(r'^"(?P<title>[^"]+)"\s*,?\s+by\s+(?P<artist>.+)$', re.IGNORECASE)
_BY_SINGLE = re.compile(r"^'(?P<title>[^']+)'\s*,?\s+by\s+(?P<artist>.+)$", re.IGNORECASE)
# Verbs that follow the artist in "Artist shares new single "Title"" style headlines.
_VERBS = (
    r"shares?|unveils?|releases?|drops?|returns?|announces?|debuts?|premieres?|reveals?|delivers?|"
    r"presents?|offers?|teams? up|taps|channels?|gets?|keeps?|is back|are back|is|are|has|have|"
    r"launch(?:es)?|continues?|showcases?|explores?|deals?|twists?|unleash(?:es)?|serves?|lets?|"
    r"puts?|brings?|makes?|wants?|goes|go|finds?|dreams?|reflects?|evokes?|celebrates?|conjures?|"
    r"lights?|suspends?|paints?|follows?|treats?|will|hits|takes?|gives?|encourages?|impresses?|"
    r"stuns?|captivates?|turns?|looks?|sings?|tells?|calls?|asks?|mourns?|plays?|stands?|wanders?|"
    r"rides?|grooves?|embraces?|enlists?|recruits?|links?|joins?|fires?|dives?|comes?|heads?|shows?|"
    r"achieves?|unfurls?|ups|strives?|ushers?|contemplates?|escapes?|lives?|surveys?|maintains?|amps?|"
    r"faces?|transports?|ropes?|airs?|spits|connects?|releasing|sharing|returning|shines?|soars?|"
    r"builds?|crafts?|blends?|weaves?|marks?|steps?|moves?|shifts?|glides?|floats?|astounds?|"
    r"impress(?:es)?|perfects?|leads?|signs?|taps?|tests?|reaches?|gears?|hails?|covers?|remixes|"
    r"kicks?|asserts?|tells?|emerges?|recalls?"
)
_NAME_CHARS = r"(?:[^\"':;,]|(?<=\w)'(?=\w))"
# '<lead> "Title" ...' where the lead starts with the artist: 'Laurel maintains her sound on "Lovesick"'.
_LEAD_QUOTED = re.compile(r"^(?P<lead>(?:" + _NAME_CHARS + r"|,){1,90}?)\s*(?<!\w)[\"'](?P<title>[^\"]+?)[\"'](?!\w)")
# "G Flip's "Killing My Time"", "MONOGEM's new track "Get You High"" (lower-case words in between only).
_POSSESSIVE_FORM = re.compile(
    r"^(?P<artist>" + _NAME_CHARS + r"{1,80}?)'s?\s+(?:[a-z][\w-]*\s+){0,3}?[\"'](?P<title>[^\"]+?)[\"'](?!\w)"
)
# A word list that reads like a sentence, not a name ("Interview with ...", "Meet ...").
_NOT_AN_ARTIST = re.compile(
    r"^(?:interview|meet|watch|listen|stream|premiere|review|new|the best|top \d+|best of|playlist|"
    r"video|tour|going|news|album|ep|single|songs?|tracks?|mixtape|photos?|live|feature|introducing)\b",
    re.IGNORECASE,
)


def _is_label(prefix: str) -> bool:
    """True when a leading segment is an editorial label ('New Music', 'SONG OF THE DAY', a date)."""
    if _STRONG_LABEL.search(prefix):
        return True
    words = [w.strip("[]()#.:!?,") for w in prefix.lower().split()]
    words = [w for w in words if w]
    if not words:
        return True
    return all(w in _LABEL_WORDS or w in _MONTHS or w.isdigit() or re.fullmatch(r"\d+(st|nd|rd|th)", w) for w in words)


def _strip_prefixes(text: str) -> str:
    """Drop editorial labels at the start: '[Streaming]:', 'SONG PICK:', 'Jam of the Day |', ...."""
    for _ in range(4):
        before = text
        # A leading [tag] is always the blog's: '[Streaming]:', '[MP3]', '[B3SCI Records]'.
        bracket = re.match(r"^\[([^\]]{1,40})\]\s*[:|-]?\s*(.+)$", text)
        if bracket:
            text = bracket.group(2)
        labelled = re.match(r"^(.{1,45}?)\s*(?::{1,2}|\||//{1,2}|\?)\s*(.+)$", text)
        if labelled and _is_label(labelled.group(1)):
            text = labelled.group(2)
        # "SONG OF THE DAY Kevin Morby - ..." has no punctuation after the label.
        bare = re.match(
            r"^(song of the day|track of the day|song pick|new music|new single|new track|new song|"
            r"premiere|now playing|listen(?: to)?|stream|streaming)\s+(.+)$",
            text,
            re.IGNORECASE,
        )
        if bare:
            text = bare.group(2)
        text = text.strip(" :|-/")
        if text == before:
            break
    return text


def _site_compact(site: str | None) -> str:
    if not site:
        return ""
    host = site.lower().split("//")[-1].split("/")[0]
    host = re.sub(r"^(?:www|web|m)\.", "", host)
    host = re.sub(r"\.(?:com|org|net|co\.uk|co|uk|la|fm|blogspot\.com|tumblr\.com|io|me|de|fr)$", "", host)
    return re.sub(r"[^a-z0-9]", "", host.split(".")[0])


def _is_site_suffix(segment: str, site_compact: str) -> bool:
    if _SUFFIX_WORDS.match(segment.strip(" .:")):
        return True
    compact = re.sub(r"[^a-z0-9]", "", segment.lower())
    if not compact:
        return True
    if site_compact and len(compact) >= 4 and (compact in site_compact or site_compact in compact):
        return True
    # "buzzbands.la", "Stereofox Music Blog", "Too Much Love Magazine": looks like a site, not a song.
    return bool(re.search(r"\.(?:com|org|net|la|fm|co|uk)\b|\bmusic blog\b|\bmagazine\b|\bmag\b$", segment, re.I))


def strip_decorations(text: str) -> str:
    """Remove '(feat. X)', '[Official Video]', '(Prod. by X)', '(2018)', remix tags and trailing 'ft. X'."""
    previous = None
    while previous != text:
        previous = text
        text = _PARENS_DROP.sub("", text)
    return normalise_spaces(text).strip(" :|-/,")


def _unquote(text: str) -> tuple[str, bool]:
    """Strip one pair of surrounding quotes; report whether there was one."""
    text = text.strip()
    match = re.fullmatch(r'"([^"]+)"[.!?]?|\'(.+)\'[.!?]?', text)
    if match:
        return (match.group(1) or match.group(2)).strip(), True
    first_quoted = re.match(r'^"([^"]+)"|^\'([^\']+)\'(?!\w)', text)
    if first_quoted:  # '"Stolen Moments" + "French Riviera"': the first one names the song
        return (first_quoted.group(1) or first_quoted.group(2)).strip(), True
    return text, False


def _clean_part(text: str) -> str:
    text = _TRAILING_FEAT.sub("", strip_decorations(text))
    return normalise_spaces(text).strip(" :|-/,.").strip()


def _plausible(artist: str, title: str) -> tuple[str, str] | None:
    artist, title = _clean_part(artist), _clean_part(title)
    artist, _ = _unquote(artist)
    artist = re.sub(r"'s?$", "", artist)
    title, _ = _unquote(title)
    title = title.strip(" ,.")
    if not artist or not title or not re.search(r"\w", artist) or not re.search(r"\w", title):
        return None
    if len(artist.split()) > 7 or len(title.split()) > 12 or len(artist) > 60 or len(title) > 90:
        return None
    if _NOT_AN_ARTIST.match(artist) or _is_label(artist):
        return None
    if name_key(artist) == name_key(title):
        return None
    return artist, title


def _split_pair(text: str, site_compact: str, suffix_removed: bool) -> tuple[str, str] | None:
    """'A - B' / 'A | B' / 'A // B' / 'A: B' / 'A, "B"' / 'A "B"' with the quoted side as the title."""
    segments = [s for s in _SEPARATORS.split(text) if s.strip()]
    while len(segments) > 2 and _is_site_suffix(segments[-1], site_compact):
        segments.pop()
    if len(segments) >= 2:
        for segment in segments:  # '"Title" by Artist' hiding in one of the segments
            by = _BY.match(segment) or _BY_SINGLE.match(segment)
            if by:
                return _plausible(_cut_at_verb(by.group("artist")), by.group("title"))
        left, right = segments[0], segments[1]
        comma = re.fullmatch(r"([^,]{1,40}),\s+([^,\"]{1,60})", left)
        if len(segments) == 2 and comma and not _unquote(right)[1] and len(comma.group(1).split()) <= 5:
            # 'Abalone, Avery | First Transmission': the blog writes 'Artist, Title | Blog name'.
            return _plausible(comma.group(1), comma.group(2))
        if len(segments) > 2 and _is_label(left):
            left, right = segments[1], segments[2]
        # A label glued to the artist with ':' ('Women in Music: Me Not You - Chemical Cure').
        left = re.split(r"\s*(?::{1,2}|\||//)\s*", left)[-1]
        _, left_quoted = _unquote(left)
        _, right_quoted = _unquote(right)
        if left_quoted and not right_quoted:
            left, right = right, left
        return _plausible(left, right)
    possessive = _POSSESSIVE_FORM.match(text)
    if possessive:
        artist = _trailing_name(possessive.group("artist").split(":")[-1])
        if artist:
            return _plausible(artist, possessive.group("title"))
    lead = _LEAD_QUOTED.match(text)
    if lead:
        artist = _artist_before_verb(lead.group("lead"))
        if artist:
            return _plausible(artist, lead.group("title"))
    colon = re.match(r"^([^:\"]{1,60}?)\s*:\s+(.+)$", text)
    if colon and len(colon.group(1).split()) <= 5:
        return _plausible(colon.group(1), colon.group(2))
    # 'Artist "Title"' / 'artist, "title"': only when the left side is short and reads like a name.
    quoted_after = re.match(r"^([^\"]{1,90}?)\s*,?\s+(\"[^\"]+\"|'.+')\s*$", text)
    if quoted_after:
        left = _TRAILING_FEAT.sub("", quoted_after.group(1))
        words = left.split()
        lowercase = [w for w in words if w[:1].islower() and w.lower() not in _CONNECTORS]
        if len(words) <= 5 and not _has_verb(left) and not (len(words) > 3 and lowercase):
            return _plausible(left, quoted_after.group(2))
    if suffix_removed:  # 'Beach House, Lemon Glow | Blog'
        comma = re.fullmatch(r"([^,]{1,60}),\s+([^,]{1,90})", text)
        if comma:
            return _plausible(comma.group(1), comma.group(2))
    return None


_LEADING_JOINERS = {"and", "&", "x", "+", "/", "of", "vs", "vs."}
_CONNECTORS = {"and", "&", "x", "of", "the", "de", "la", "y", "vs", "vs.", "+", "/", "da", "von", "van"}


def _cut_at_verb(phrase: str) -> str:
    """'Knox White is funky AF' -> 'Knox White'."""
    words = phrase.split()
    for index, word in enumerate(words[1:], start=1):
        if _is_verb(word):
            return " ".join(words[:index])
    return phrase


def _has_verb(phrase: str) -> bool:
    return any(_is_verb(word) for word in phrase.split()[1:])


def _trailing_name(phrase: str) -> str | None:
    """The capitalised run that ends a phrase: 'Kids are dictators in Young Fathers' -> 'Young Fathers'."""
    name: list[str] = []
    for word in reversed(phrase.split()):
        if word[:1].islower() and word.lower() not in _CONNECTORS:
            break
        name.insert(0, word)
    while name and name[0].lower() in _LEADING_JOINERS:
        name.pop(0)
    return " ".join(name) or None


def _is_verb(word: str) -> bool:
    word = word.strip(",.!?").lower()
    return bool(re.fullmatch(_VERBS, word))


def _artist_before_verb(lead: str) -> str | None:
    """The name that opens 'Laurel maintains her stripped back sound on', or None without a verb."""
    words = lead.split()
    name: list[str] = []
    for index, word in enumerate(words):
        if index > 0 and _is_verb(word):
            break
        lowercase = word[:1].islower() and word.lower() not in _CONNECTORS
        # "Liverpool's The Vryll Society shares": a possessive place or label before the name.
        possessive = (
            re.search(r"\w's?$", word) is not None and index + 1 < len(words) and not _is_verb(words[index + 1])
        )
        if lowercase or possessive:
            # A descriptor before the name ('London synth-pop collective FRANC MOODY shares'): start over.
            name = []
            continue
        name.append(word)
    else:
        return None  # no verb: not a headline of this shape
    while name and name[-1].lower() in _CONNECTORS:
        name.pop()
    while name and name[0].lower() in _LEADING_JOINERS:
        name.pop(0)
    return " ".join(name) or None


def parse_song_title(headline: str, site: str | None = None) -> tuple[str, str] | None:
    """(artist, title) named by a post headline, or None when it names no single song.

    `site` (the blog's domain or URL) helps drop a trailing blog name ('... | Stereofox Music Blog').
    """
    if not headline or not headline.strip():
        return None
    text = normalise_headline(headline)
    site_compact = _site_compact(site)
    # A trailing blog name after '|', '::', '-' or a lone ' :' left by some blogs.
    text = re.sub(r"\s+:+\s*$", "", text)
    segments = re.split(r"(\s+(?:\||::|-|//)\s+)", text)
    suffix_removed = False
    while len(segments) >= 3 and _is_site_suffix(segments[-1], site_compact):
        segments = segments[:-2]
        suffix_removed = True
    text = "".join(segments)
    text = _strip_prefixes(text)
    text = re.sub(
        r"^(?:listen to|check out|watch|hear|stream|meet|discover|introducing|newcomers?)\s+",
        "",
        text,
        flags=re.IGNORECASE,
    )
    text = re.sub(r"(?:\s+#\w+)+\s*$", "", text)  # trailing hashtags
    text = strip_decorations(text)
    text = re.sub(r"^[^\w\"'(\[]+", "", text)  # leading emoji or bullets
    if not text:
        return None

    by = _BY.match(text) or _BY_SINGLE.match(text)
    if by:
        return _plausible(_cut_at_verb(by.group("artist")), by.group("title"))
    return _split_pair(text, site_compact, suffix_removed)
