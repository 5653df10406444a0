import pandas as pd

from sentipipe.data.labels import label_ratings
from sentipipe.data.vader import parse_ground_truth


def test_parses_crlf_lines_and_recodes_windows_1252():
    raw = b"1\t2.5\tGreat film\r\n2\t-1.25\tna\xefve and dull\r\n\r\n3\tbad line without rating\r\n4\tx\ttext\r\n"
    frame, counts = parse_ground_truth(raw, "movie")
    assert frame["text"].tolist() == ["Great film", "na\u00efve and dull"]
    assert frame["rating"].tolist() == [2.5, -1.25]
    assert set(frame["source"]) == {"movie"}
    assert counts == {"lines": 4, "malformed": 2, "recoded": 1}
    assert frame["id"].is_unique


def test_tabs_inside_the_text_are_kept():
    frame, _ = parse_ground_truth(b"7\t1.0\tleft\tright\n", "tweets")
    assert frame.loc[0, "text"] == "left\tright"


def test_ratings_inside_the_threshold_are_dropped_and_counted():
    frame = pd.DataFrame({"rating": [2.0, 0.3, -0.3, -2.0, 0.0], "text": list("abcde")})
    kept, dropped = label_ratings(frame, threshold=0.5)
    assert kept["label"].tolist() == ["positive", "negative"]
    assert dropped == 3
    kept0, dropped0 = label_ratings(frame, threshold=0.0)
    assert kept0["label"].tolist() == ["positive", "positive", "negative", "negative"]
    assert dropped0 == 1
