"""Company-name normalisation (pure): SEC legal names -> the names people write.

"AMAZON COM INC" -> "Amazon", "Walt Disney Co" -> "Walt Disney",
"BANK OF AMERICA CORP /DE/" -> "Bank of America".
"""

from __future__ import annotations

import re

# state-of-incorporation and listing tags: "/DE/", "\DE\", "/ADR", "/NEW", "/UK"
_SLASH_TAG = re.compile(r"\s*[/\\][A-Za-z .]{1,20}[/\\]?\s*$")
_LEGAL = {
    "inc", "incorporated", "corp", "corporation", "co", "company", "cos", "ltd", "limited", "plc", "llc",
    "lp", "l.p", "holdings", "holding", "group", "n.v", "nv", "s.a", "sa", "ag", "se", "a/s", "asa", "ab",
    "s.p.a", "spa", "tbk", "s.a.b", "de", "c.v", "cv", "bhd", "berhad", "pte", "oyj", "kgaa", "pbc",
    "com", "new", "the", "&", "and", "adr", "ads", "n.a", "s.a.b.", "sab", "gmbh", "kk",
}
# generic trailing words: dropped to get the short name ("Micron Technology" -> "Micron")
GENERIC = {
    "technology", "technologies", "systems", "industries", "international", "pharmaceuticals",
    "pharmaceutical", "therapeutics", "bancorp", "bancshares", "financial", "resources", "brands",
    "communications", "networks", "semiconductor", "semiconductors", "software", "labs", "laboratories",
    "enterprises", "entertainment", "interactive", "solutions", "sciences", "biosciences", "biotherapeutics",
    "worldwide", "global", "platforms", "motors", "devices", "materials", "services", "partners",
    "stores", "markets", "products", "healthcare", "health", "energy", "petroleum", "mining", "foods",
    "restaurants", "airlines", "air", "lines", "chemical", "chemicals", "instruments", "electronics", "motor",
    "oil", "gas", "bank", "insurance", "capital", "realty", "properties", "trust", "reit", "inc", "pharma",
    "biotech", "bio", "medical", "biopharma", "therapeutic", "oncology", "automotive", "media", "digital",
    "wholesale", "dynamics", "robotics", "aerospace", "logistics", "hotels", "resorts", "casinos", "gaming",
    "water", "power", "utilities", "electric", "steel", "minerals", "metals", "gold", "silver", "royalty",
    "acquisition", "investment", "investments", "fund", "income", "opportunities", "ventures",
    "companies", "company", "works",
}


def _smart_title(word: str) -> str:
    """Title-case an ALL-CAPS word, keeping short acronym-like tokens (IBM, AT&T, 3M) as they are."""
    if not word.isupper():
        return word
    letters = re.sub(r"[^A-Za-z]", "", word)
    if len(letters) <= 3 or "&" in word or not re.search(r"[AEIOUY]", letters):
        return word
    return word.capitalize() if "-" not in word else "-".join(p.capitalize() for p in word.split("-"))


def normalize_name(legal: str) -> str:
    """The name without legal form, incorporation tags or punctuation noise, in reading case."""
    name = legal.strip().strip('"')
    for _ in range(3):
        name = _SLASH_TAG.sub("", name)
    name = re.sub(r"\s*\(.*?\)\s*", " ", name)
    name = name.replace(",", " ").replace("  ", " ")
    words = name.split()
    while len(words) > 1 and words[-1].lower().rstrip(".") in _LEGAL:
        words.pop()
    while len(words) > 1 and words[0].lower() == "the":
        words.pop(0)
    if name.isupper() or sum(w.isupper() for w in words) == len(words):
        words = [_smart_title(w) for w in words]
        words = [w.lower() if w.lower() in ("of", "and", "the", "for", "de") and i else w for i, w in enumerate(words)]
    return " ".join(words).strip(" .-&")


def short_names(name: str) -> list[str]:
    """Every shorter form by dropping generic trailing words one at a time (longest first)."""
    words = name.split()
    out = []
    while len(words) > 1 and words[-1].lower().strip(".") in GENERIC | {"&", "and"}:
        words = words[:-1]
        form = " ".join(words).strip(" &-")
        if form and form.lower() not in ("&", "and") and not form.endswith(("&", " and")):
            out.append(form)
    return out


def company_name(legal: str) -> str:
    """A company's name for a headline or a span, from the SEC's legal or EDGAR's conformed name: as
    :func:`normalize_name`, and a trailing slash or backslash dropped first ("TOYOTA MOTOR CORP/" ->
    "Toyota Motor")."""
    name = re.sub(r"[\s/\\]+$", "", legal.strip()) or legal.strip()
    return normalize_name(name) or name
