from costkit.policies.compress.lexical import bm25_scores, stem, words


def test_words_drop_stopwords_and_fold_inflections():
    assert words("Which battles were conquered by the cities?") == ["battle", "conquer", "city"]
    forms = ("stopped", "running", "studies", "class", "bus")
    assert [stem(w) for w in forms] == ["stop", "run", "study", "class", "bus"]


def test_bm25_ranks_the_matching_document_first_and_is_zero_without_overlap():
    docs = [words("the duke of Normandy"), words("a battle at Hastings in 1066"), []]
    scores = bm25_scores(docs, words("Where was the battle of Hastings?"))
    assert scores.argmax() == 1 and scores[0] == 0 and scores[2] == 0
    assert not bm25_scores(docs, words("unrelated query")).any()
