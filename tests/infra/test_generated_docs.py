from __future__ import annotations

import pytest

from local.docs_gen import generated


@pytest.mark.parametrize("path_and_text", generated().items(), ids=lambda item: item[0].name)
def test_committed_document_is_what_the_code_generates(path_and_text) -> None:
    # Given the document the code generates / Then the committed file is identical (run `make docs` if not)
    path, text = path_and_text
    assert path.exists(), f"{path} is missing: run `make docs`"
    assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `make docs`"
