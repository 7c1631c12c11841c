"""Word list of the synthetic corpus: common English words grouped by part of speech.

Sentences are built from a small phrase grammar (see :mod:`asteroid_spmamba.data.synthetic`), so
the words are grouped by the slot they fill. Function words (determiners, prepositions) are shared
by every split; content words (nouns, adjectives, verbs, adverbs) are split between train/valid and
test by position: the word at index ``i`` of its group goes to the test split when
``i % TEST_EVERY == TEST_EVERY - 1`` (one word in five), otherwise to train/valid. Test sentences
therefore never contain a content word heard in training.
"""
from typing import Dict, Tuple

TEST_EVERY = 5

DETERMINERS: Tuple[str, ...] = (
    "the", "a", "this", "that", "every", "one", "some", "my", "your", "our", "his", "her", "their",
)

PREPOSITIONS: Tuple[str, ...] = (
    "in", "on", "under", "near", "behind", "beside", "above", "below", "across", "along",
    "through", "around", "past", "toward", "inside", "outside", "beyond", "with", "without", "before",
)

NOUNS: Tuple[str, ...] = (
    "house", "garden", "river", "window", "table", "kitchen", "street", "market", "village", "mountain",
    "forest", "island", "bridge", "station", "library", "school", "office", "hospital", "church", "castle",
    "doctor", "teacher", "farmer", "sailor", "driver", "painter", "writer", "singer", "baker", "soldier",
    "child", "woman", "man", "friend", "brother", "sister", "mother", "father", "neighbour", "stranger",
    "dog", "cat", "horse", "bird", "rabbit", "fox", "sheep", "cow", "mouse", "lion",
    "apple", "orange", "bread", "cheese", "butter", "coffee", "sugar", "water", "soup", "cake",
    "letter", "paper", "pencil", "picture", "book", "story", "song", "message", "question", "answer",
    "car", "train", "boat", "plane", "bicycle", "truck", "wagon", "ship", "engine", "wheel",
    "morning", "evening", "winter", "summer", "autumn", "spring", "moment", "journey", "holiday", "weekend",
    "chair", "lamp", "mirror", "blanket", "basket", "bottle", "bucket", "candle", "clock", "ladder",
    "hat", "coat", "shirt", "glove", "boot", "scarf", "jacket", "pocket", "button", "ribbon",
    "stone", "sand", "cloud", "storm", "wind", "rain", "snow", "sun", "moon", "star",
    "king", "queen", "captain", "pilot", "guard", "nurse", "judge", "clerk", "hunter", "miller",
    "road", "field", "valley", "harbour", "meadow", "desert", "ocean", "lake", "hill", "cave",
    "door", "wall", "roof", "floor", "gate", "fence", "tower", "corner", "room", "yard",
)

ADJECTIVES: Tuple[str, ...] = (
    "old", "young", "small", "large", "quiet", "loud", "bright", "dark", "warm", "cold",
    "happy", "sad", "clever", "gentle", "brave", "tired", "hungry", "busy", "lazy", "careful",
    "red", "blue", "green", "yellow", "white", "black", "brown", "purple", "golden", "silver",
    "heavy", "light", "soft", "hard", "smooth", "rough", "clean", "dirty", "empty", "full",
    "tall", "short", "wide", "narrow", "deep", "shallow", "long", "round", "square", "flat",
    "strange", "famous", "simple", "pretty", "ugly", "honest", "polite", "angry", "calm", "proud",
    "early", "late", "sudden", "distant", "nearby", "ancient", "modern", "wooden", "broken", "hidden",
)

VERBS: Tuple[str, ...] = (
    "found", "saw", "took", "gave", "made", "kept", "left", "brought", "bought", "sold",
    "carried", "opened", "closed", "painted", "cleaned", "watched", "followed", "visited", "pushed", "pulled",
    "lifted", "dropped", "moved", "turned", "touched", "needed", "wanted", "liked", "loved", "hated",
    "called", "helped", "answered", "asked", "counted", "covered", "crossed", "fixed", "filled", "washed",
    "remembered", "noticed", "described", "borrowed", "received", "collected", "delivered", "ordered", "prepared", "repaired",
    "chased", "caught", "held", "hid", "built", "broke", "drew", "wrote", "read", "heard",
    "packed", "planted", "picked", "hurried", "waited", "walked", "climbed", "reached", "passed", "missed",
    "tasted", "smelled", "checked", "guarded", "measured", "pointed", "signed", "traded", "warmed", "wrapped",
)

ADVERBS: Tuple[str, ...] = (
    "slowly", "quickly", "quietly", "loudly", "gently", "carefully", "happily", "sadly", "gladly", "later",
    "again", "today", "yesterday", "tonight", "soon", "twice", "always", "often", "never", "sometimes",
    "abroad", "upstairs", "downstairs", "politely", "everywhere", "together", "alone", "suddenly", "finally", "easily",
)

CONTENT_GROUPS: Dict[str, Tuple[str, ...]] = {
    "noun": NOUNS,
    "adjective": ADJECTIVES,
    "verb": VERBS,
    "adverb": ADVERBS,
}


def content_words(split: str) -> Dict[str, Tuple[str, ...]]:
    """Content words usable in ``split`` ("train", "valid" or "test"), by part of speech."""
    test = split == "test"
    return {
        group: tuple(w for i, w in enumerate(words) if (i % TEST_EVERY == TEST_EVERY - 1) == test)
        for group, words in CONTENT_GROUPS.items()
    }
