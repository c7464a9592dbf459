"""The family trees of Hinton (1986), "Learning distributed representations of concepts"
(Proc. 8th Annual Conference of the Cognitive Science Society), generated from the trees' structure
(lecture: "Combining Multiple Sources of Evidence with Shared Representations", relational
learning).

Two isomorphic families of 12 people, English and Italian, three generations each::

    Christopher = Penelope                Andrew = Christine
          |                                      |
    Arthur = Margaret   Victoria = James   Jennifer = Charles
                              |
                       Colin   Charlotte

    Roberto = Maria                       Pierro = Francesca
          |                                      |
    Emilio = Gina        Lucia = Marco      Angela = Tomaso
                              |
                       Alfonso   Sophia

and 12 relations, read as "head's relation is tail" (``("Colin", "father", "James")``: Colin's
father is James): father, mother, husband, wife, son, daughter, uncle, aunt, brother, sister,
nephew, niece. Each family has 56 true (head, relation, tail) triples; they form 52 distinct
(head, relation) questions, some with two answers (Colin has two uncles), which are the 104
"instances of relationships" of Hinton's paper (2 x 52), each a pattern with every correct
person active. ``family_triples()`` returns the 112 triples, ``family_queries()`` the 104
questions with their answer sets.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RELATIONS", "FAMILIES", "Person", "family_people", "family_triples",
           "family_queries", "COUNTERPART"]

RELATIONS = ("father", "mother", "husband", "wife", "son", "daughter", "uncle", "aunt",
             "brother", "sister", "nephew", "niece")

# the English tree; the Italian one is the same tree under COUNTERPART
_ENGLISH = {  # name: (sex, generation, branch)
    "Christopher": ("m", 1, "left"), "Penelope": ("f", 1, "left"),
    "Andrew": ("m", 1, "right"), "Christine": ("f", 1, "right"),
    "Arthur": ("m", 2, "left"), "Margaret": ("f", 2, "left"),
    "Victoria": ("f", 2, "middle"), "James": ("m", 2, "middle"),
    "Jennifer": ("f", 2, "right"), "Charles": ("m", 2, "right"),
    "Colin": ("m", 3, "middle"), "Charlotte": ("f", 3, "middle"),
}
_COUPLES = (("Christopher", "Penelope"), ("Andrew", "Christine"), ("Arthur", "Margaret"),
            ("James", "Victoria"), ("Charles", "Jennifer"))  # (husband, wife)
_PARENTS = {"Arthur": ("Christopher", "Penelope"), "Victoria": ("Christopher", "Penelope"),
            "James": ("Andrew", "Christine"), "Jennifer": ("Andrew", "Christine"),
            "Colin": ("James", "Victoria"), "Charlotte": ("James", "Victoria")}  # (father, mother)
COUNTERPART = {"Christopher": "Roberto", "Penelope": "Maria", "Andrew": "Pierro",
               "Christine": "Francesca", "Arthur": "Emilio", "Margaret": "Gina",
               "Victoria": "Lucia", "James": "Marco", "Jennifer": "Angela",
               "Charles": "Tomaso", "Colin": "Alfonso", "Charlotte": "Sophia"}
FAMILIES = ("English", "Italian")


@dataclass(frozen=True)
class Person:
    """One of the 24 people: name, family, sex ("m"/"f"), generation (1 oldest to 3) and the
    branch of the tree drawing ("left": Christopher's son's couple and his parents, "right":
    Andrew's daughter's couple and her parents, "middle": the couple that joins the two lines
    and their children)."""
    name: str
    family: str
    sex: str
    generation: int
    branch: str


def family_people() -> list[Person]:
    """The 24 people, the English family first, in the order of ``COUNTERPART``."""
    people = []
    for family in FAMILIES:
        for name in COUNTERPART:
            sex, generation, branch = _ENGLISH[name]
            people.append(Person(name if family == "English" else COUNTERPART[name], family,
                                 sex, generation, branch))
    return people


def _english_triples() -> list[tuple[str, str, str]]:
    sex = {n: v[0] for n, v in _ENGLISH.items()}
    spouse = {}
    for h, w in _COUPLES:
        spouse[h], spouse[w] = w, h
    children = {}
    for child, parents in _PARENTS.items():
        for p in parents:
            children.setdefault(p, []).append(child)

    def siblings(x):
        return [c for c in children.get(_PARENTS[x][0], []) if c != x] if x in _PARENTS else []

    out = []
    for x in _ENGLISH:
        if x in spouse:
            out.append((x, "wife" if sex[x] == "m" else "husband", spouse[x]))
        if x in _PARENTS:
            out += [(x, "father", _PARENTS[x][0]), (x, "mother", _PARENTS[x][1])]
        for c in children.get(x, []):
            out.append((x, "son" if sex[c] == "m" else "daughter", c))
        for s in siblings(x):
            out.append((x, "brother" if sex[s] == "m" else "sister", s))
        # uncles and aunts: the parents' siblings and those siblings' spouses
        if x in _PARENTS:
            for p in _PARENTS[x]:
                for s in siblings(p):
                    for u in (s, spouse.get(s)):
                        if u is not None:
                            out.append((x, "uncle" if sex[u] == "m" else "aunt", u))
    # nephews and nieces: the inverse of uncle/aunt
    out += [(u, "nephew" if sex[x] == "m" else "niece", x)
            for x, r, u in list(out) if r in ("uncle", "aunt")]
    return out


def family_triples(families=FAMILIES) -> list[tuple[str, str, str]]:
    """All true (head, relation, tail) triples of the given families: 56 per family, 112 in
    all, English first."""
    english = _english_triples()
    out = []
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"family_triples: unknown family {family!r}; expected one of "
                             f"{FAMILIES}")
        if family == "English":
            out += english
        else:
            out += [(COUNTERPART[h], r, COUNTERPART[t]) for h, r, t in english]
    return out


def family_queries(families=FAMILIES) -> dict[tuple[str, str], set[str]]:
    """Hinton's 104 instances: (person, relation) -> the set of correct people (52 per
    family)."""
    queries: dict[tuple[str, str], set[str]] = {}
    for h, r, t in family_triples(families):
        queries.setdefault((h, r), set()).add(t)
    return queries
