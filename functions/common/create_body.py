"""What every entry point does with a validated request before starting its job: image bytes go to S3.

Images never travel through Step Functions (256 KB payloads) nor sit in the job record (400 KB items): each
image given as bytes is uploaded to ``inputs/{job_id}/{index}.{ext}`` and the request refers to it by key.
Shared by the API (functions/api/logic.py), the inbox and event intake (functions/intake/logic.py) and the CLI
(local/generate.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.common.video_request import ImageInput, VideoRequest

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


def upload_images(request: VideoRequest, job_id: str, *, s3: S3Client, bucket: str, input_prefix: str) -> VideoRequest:
    """The request with every image given as bytes uploaded and replaced by its S3 key (URLs stay URLs)."""
    if not any(image.data is not None for image in request.images):
        return request
    images = []
    for index, image in enumerate(request.images):
        if image.data is None:
            images.append(image)
            continue
        media_type = image.media_type or "image/png"
        key = f"{input_prefix}{job_id}/{index}.{media_type.split('/')[-1]}"
        s3.put_object(Bucket=bucket, Key=key, Body=image.data, ContentType=media_type)
        images.append(ImageInput(s3_key=key, media_type=media_type, filename=image.filename))
    return request.model_copy(update={"images": images})
