"""The part-of-speech tags of the Brown corpus, read from NLTK's brown.zip without extracting
(the same archive as ``BrownCorpus``; see ``brown_words`` in ``flowgrad.datasets.text``).

Every token of the archive is ``word/tag``; a sentence is one tab-indented line. Brown's tag set
has 472 distinct tags once its modifiers are counted; two simplifications are offered:

* ``tagset="base"``: the base tag, 92 of them. ``base_tag`` lower-cases the tag, drops the
  foreign-word prefix ``fw-`` (``fw-nn`` -> ``nn``), the title, headline and cited-word suffixes
  ``-tl``, ``-hl``, ``-nc`` (``nn-tl-hl`` -> ``nn``), keeps the first part of a contraction
  (``ppss+md``, "I'll", -> ``ppss``; ``vb+ppo``, "gimme", -> ``vb``) and drops the negation
  mark ``*`` of a verb (``md*``, "can't", -> ``md``); ``*`` alone ("not") stays ``*``.
* ``tagset="universal"`` (the default): the base tag mapped to twelve coarse classes in the
  manner of Petrov, Das & McDonald's universal tag set (LREC 2012): NOUN, VERB, ADJ, ADV, PRON,
  DET, ADP, NUM, CONJ, PRT, ``.`` (punctuation) and X. The table is ``BROWN_UNIVERSAL`` (ours,
  written from the Brown manual's tag descriptions; nouns include the possessives and the
  adverbial nouns ``nr``; the verbs include be/do/have and the modals; ``ex`` "there" and the
  pre-qualifiers/pre-quantifiers ``abl``/``abn``/``abx`` are DET; ``ql``, ``wrb``, ``wql`` and the
  negator ``*`` are ADV; ``cs`` (subordinating) is CONJ; ``to`` and the particles ``rp`` are PRT;
  ``uh`` and ``nil`` are X).

A tag whose base is not in the table raises ``UnknownTagError`` naming the tag, the token and
where it was read.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BROWN_UNIVERSAL", "UNIVERSAL_TAGS", "BrownTagged", "UnknownTagError", "base_tag",
           "brown_tagged", "simplify_tag"]

UNIVERSAL_TAGS = ("NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", ".",
                  "X")

_GROUPS = {
    "NOUN": "nn nn$ nns nns$ np np$ nps nps$ nr nr$ nrs",
    "VERB": "vb vbd vbg vbn vbz be bed bedz beg bem ben ber bez do dod doz hv hvd hvg hvn hvz md",
    "ADJ": "jj jj$ jjr jjs jjt od",
    "ADV": "rb rb$ rbr rbt rn ql qlp wql wrb *",
    "PRON": "pn pn$ pp$ pp$$ ppl ppls ppo pps ppss wp$ wpo wps",
    "DET": "at abl abn abx ap ap$ dt dt$ dti dts dtx wdt ex",
    "ADP": "in",
    "NUM": "cd cd$",
    "CONJ": "cc cs",
    "PRT": "rp to",
    ".": ". , : ( ) `` '' ' --",
    "X": "nil uh fw",
}
BROWN_UNIVERSAL = {base: coarse for coarse, bases in _GROUPS.items() for base in bases.split()}
_TAGSETS = ("universal", "base")
_SUFFIX = re.compile(r"(.+?)-(tl|hl|nc)")
_BROWN_TEXT = re.compile(r"brown/c[a-r]\d\d")


class UnknownTagError(ValueError):
    """A Brown tag whose base tag is not in the mapping."""


def base_tag(tag: str) -> str:
    """The base of a Brown tag: lower case, without ``fw-``, ``-tl``/``-hl``/``-nc``, the
    second part of a contraction or a verb's negation ``*`` (see the module docstring)."""
    t = tag.lower()
    if t.startswith("fw-") and len(t) > 3:
        t = t[3:]
    while (m := _SUFFIX.fullmatch(t)) is not None:
        t = m.group(1)
    if "+" in t[1:]:
        t = t[:t.index("+", 1)]
    if len(t) > 1 and t.endswith("*"):
        t = t[:-1]
    return t


def simplify_tag(tag: str, tagset: str = "universal") -> str:
    """``tag`` in the simplified tag set: its base (``"base"``) or its coarse class
    (``"universal"``); a base outside ``BROWN_UNIVERSAL`` raises UnknownTagError."""
    if tagset not in _TAGSETS:
        raise ValueError(f"tagset must be one of {_TAGSETS}, got {tagset!r}")
    base = base_tag(tag)
    if base not in BROWN_UNIVERSAL:
        raise UnknownTagError(f"unknown Brown tag {tag!r} (base {base!r}): not one of the "
                              f"{len(BROWN_UNIVERSAL)} base tags of BROWN_UNIVERSAL")
    return base if tagset == "base" else BROWN_UNIVERSAL[base]


@dataclass
class BrownTagged:
    """Tagged sentences: ``sentences[i]`` (words) and ``tags[i]`` (simplified tags, same length)
    from text ``files[i]``; ``starts[i]`` is the index of the sentence's first word in the
    corpus's word stream (NLTK's ``brown.words()`` order, no paragraph marks)."""
    sentences: list[list[str]] = field(default_factory=list)
    tags: list[list[str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    tagset: str = "universal"

    @property
    def n_words(self) -> int:
        return sum(len(s) for s in self.sentences)

    def tag_names(self) -> list[str]:
        """The tags that occur, in ``UNIVERSAL_TAGS`` order (universal) or sorted (base)."""
        seen = {t for sent in self.tags for t in sent}
        order = UNIVERSAL_TAGS if self.tagset == "universal" else sorted(BROWN_UNIVERSAL)
        return [t for t in order if t in seen]

    def __len__(self) -> int:
        return len(self.sentences)


def _default_zip(download: bool) -> Path:
    from .files import locate
    from .text import BrownCorpus

    return locate("brown", ["brown.zip"], download=download, checksums=BrownCorpus.checksums,
                  urls=BrownCorpus.urls) / "brown.zip"


def brown_tagged(zip_path=None, *, tagset: str = "universal",
                 lowercase: bool = False, download: bool = True) -> BrownTagged:
    """Every sentence of brown.zip (the 500 texts in NLTK's order, ca01 ... cr09) with its tags
    simplified to ``tagset`` ("universal" or "base"). ``zip_path`` defaults to the checksummed
    brown.zip that ``BrownCorpus`` finds (../shared/data/brown, $FLOWGRAD_DATA, the cache)."""
    if tagset not in _TAGSETS:
        raise ValueError(f"tagset must be one of {_TAGSETS}, got {tagset!r}")
    zip_path = _default_zip(download) if zip_path is None else Path(zip_path)
    out = BrownTagged(tagset=tagset)
    cache: dict[str, str] = {}
    position = 0
    with zipfile.ZipFile(zip_path) as z:
        names = sorted(n for n in z.namelist() if _BROWN_TEXT.fullmatch(n))
        if not names:
            raise ValueError(f"brown_tagged: {zip_path} holds no Brown text brown/ca01 ... "
                             "brown/cr09")
        for name in names:
            with z.open(name) as raw:
                text = io.TextIOWrapper(raw, encoding="ascii").read()
            for line_no, line in enumerate(text.splitlines(), 1):
                tokens = line.split()
                if not tokens:
                    continue
                words, tags = [], []
                for tok in tokens:
                    word, slash, tag = tok.rpartition("/")
                    if not slash or not word or not tag:
                        raise ValueError(f"brown_tagged: token {tok!r} in {name} line {line_no} "
                                         "is not word/tag")
                    if tag not in cache:
                        try:
                            cache[tag] = simplify_tag(tag, tagset)
                        except UnknownTagError as e:
                            raise UnknownTagError(f"{e}; token {tok!r} in {name} line "
                                                  f"{line_no}") from None
                    words.append(word.lower() if lowercase else word)
                    tags.append(cache[tag])
                out.sentences.append(words)
                out.tags.append(tags)
                out.files.append(name.rsplit("/", 1)[-1])
                out.starts.append(position)
                position += len(words)
    return out
