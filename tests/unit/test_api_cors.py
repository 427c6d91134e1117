from __future__ import annotations

import pytest

from functions.api.handler import cors_config


def test_no_origins_means_no_cors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORS_ALLOW_ORIGINS", raising=False)
    assert cors_config() is None


def test_the_stack_option_origins_are_allowed_and_others_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given two origins from the stack's corsAllowOrigins option
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "https://app.example.com, https://admin.example.com")
    config = cors_config()
    assert config is not None
    # When a browser calls from each / Then both get their origin back, with the headers the API reads and sends
    for origin in ("https://app.example.com", "https://admin.example.com"):
        headers = config.to_dict(origin)
        assert headers["Access-Control-Allow-Origin"] == origin
        assert "Idempotency-Key" in headers["Access-Control-Allow-Headers"]
        assert "openai-poll-after-ms" in headers["Access-Control-Expose-Headers"]
    # And another origin is not allowed
    assert "Access-Control-Allow-Origin" not in config.to_dict("https://evil.example")
