from costkit.policies.compress.normalize import drop_duplicate_blocks, normalize_space


def test_white_space_is_collapsed_but_indentation_and_code_fences_stay():
    text = "a  b\t\tc   \n\n\n\n    indented  line\n```\nx  =  1\n```"
    assert normalize_space(text) == "a b c\n\n    indented line\n```\nx  =  1\n```"


def test_duplicate_paragraphs_are_dropped_across_calls_of_one_section():
    seen: set[str] = set()
    assert drop_duplicate_blocks("one\n\ntwo", seen) == "one\n\ntwo"
    assert drop_duplicate_blocks("two\n\nthree", seen) == "three"
    assert drop_duplicate_blocks("one", seen) == ""
