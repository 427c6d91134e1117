"""The happy path of every catalog model, text-to-video where the model takes text, image-to-video always."""

from __future__ import annotations

import base64

import pytest
import requests

from functions.providers.catalog import Mode, load_catalog
from tests.fixtures.images import png_bytes
from tests.workflow.harness import WorkflowHarness
from tests.workflow.outcomes import assert_completed

CATALOG = load_catalog()
TEXT_MODELS = [spec.id for spec in CATALOG.models.values() if spec.supports(Mode.TEXT)]
IMAGE_MODELS = [spec.id for spec in CATALOG.models.values() if spec.supports(Mode.IMAGE)]

IMAGE_CASES = {
    # model: (size asked for, image width, image height); Sora needs the image at the video's exact size,
    # Kling at least 300x300 pixels.
    "veo3-fast": ("1280x720", 640, 360),
    "sora-2": ("720x1280", 720, 1280),
    "sora-2-pro": ("1792x1024", 1792, 1024),
    "kling-v1-6": ("1280x720", 640, 360),
    "kling-v2-master": ("720x720", 400, 400),
    "kling-v2-5-turbo": ("720x1280", 360, 640),
    "gen3a_turbo": ("1280x768", 1280, 768),
}


def test_the_catalog_is_covered() -> None:
    assert set(TEXT_MODELS) == {
        "veo3-fast",
        "sora-2",
        "sora-2-pro",
        "kling-v1-6",
        "kling-v2-master",
        "kling-v2-5-turbo",
    }
    assert set(IMAGE_MODELS) == set(IMAGE_CASES)


@pytest.mark.parametrize("model", TEXT_MODELS)
def test_text_to_video_job_is_stored_and_announced_once(workflow: WorkflowHarness, model: str) -> None:
    # Given a text-to-video request for the model
    spec = CATALOG.models[model]
    prompt = f"A lighthouse at dusk, waves rolling in ({model})"
    # When it runs through the real state machine
    run = workflow.run({"model": model, "prompt": prompt, "metadata": {"order": "42"}})
    # Then the video the simulator served is in S3, the record is complete and one Completed event says so
    assert_completed(workflow, run)
    assert run.record.model == model
    assert run.record.cost_usd == spec.estimate_cost_usd(spec.seconds.default)
    assert run.events[0]["detail"]["metadata"] == {"order": "42"}
    # And exactly one create, in the model's own dialect, with no image
    (create,) = workflow.simulator.creates()
    assert create.dialect == spec.dialect.value
    if spec.dialect == "videos":
        assert create.form["model"] == [spec.provider_model]
        assert create.form["prompt"] == [prompt]
        assert create.files == []
        assert create.header("content-type").startswith("multipart/form-data")
    else:
        assert create.path == "/kling/v1/videos/text2video"
        assert create.json["model_name"] == spec.provider_model
        assert create.json["external_task_id"] == run.job_id
        assert "image" not in create.json


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_image_to_video_job_sends_the_uploaded_image(workflow: WorkflowHarness, model: str) -> None:
    # Given a PNG uploaded under inputs/ and an image-to-video request referring to it by its S3 key
    spec = CATALOG.models[model]
    size, width, height = IMAGE_CASES[model]
    image = png_bytes(width, height, (30, 120, 200))
    reference = workflow.upload_image(image)
    assert reference["s3_key"].startswith("inputs/")
    # When it runs through the real state machine
    run = workflow.run({"model": model, "prompt": "The scene slowly comes alive", "images": [reference], "size": size})
    # Then the job completes with the simulator's video, announced once
    assert_completed(workflow, run)
    assert run.record.request["size"] == size
    # And the one create carried the image's bytes, in the dialect's own way
    (create,) = workflow.simulator.creates()
    if spec.dialect == "videos":
        assert [(name, media_type, data) for name, _, media_type, data in create.files] == [
            ("input_reference", "image/png", image)
        ]
        assert create.form["size"] == [spec.format_for(size).provider_value]  # type: ignore[union-attr]
    elif spec.dialect == "kling":
        assert create.path == "/kling/v1/videos/image2video"
        assert base64.b64decode(create.json["image"]) == image
        assert create.json["aspect_ratio"] == spec.format_for(size).provider_value  # type: ignore[union-attr]
    else:
        assert create.path == "/runwayml/v1/image_to_video"
        assert create.json["promptImage"] == "data:image/png;base64," + base64.b64encode(image).decode()
        assert create.json["ratio"] == "1280:768"
        assert create.header("x-runway-version") == "2024-11-06"


def test_kling_succeed_is_read_as_success(workflow: WorkflowHarness) -> None:
    # Given a Kling job (Kling says "succeed", not "succeeded")
    # When it runs
    run = workflow.run({"model": "kling-v2-5-turbo", "prompt": "A red fox in fresh snow"})
    # Then the job completed
    assert_completed(workflow, run)
    # And the word the provider used for that task really was Kling's "succeed"
    answer = requests.get(
        f"{workflow.simulator.base_url}/kling/v1/videos/text2video/{run.task_id()}",
        headers={"Authorization": f"Bearer {workflow.simulator.api_key}"},
        timeout=5,
    )
    assert answer.json()["data"]["task_status"] == "succeed"
