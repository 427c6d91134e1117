"""VideoRequest: what a user asks for, validated against the model catalog before anything is spent.

A rejected request raises InvalidRequestError whose ``param`` names the field and whose message says what was
wrong and what is allowed, e.g. ``seconds: 7 is not allowed for kling-v1-6; allowed: 5, 10``. Validation
fills in the model's defaults (seconds, size, mode), so downstream code never guesses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict, cast, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from functions.common.errors import InvalidRequestError
from functions.common.images import MAX_IMAGE_BYTES, ImageInfo, decode_base64_image, inspect_image
from functions.common.url_safety import Resolver, check_public_https_url, resolve_host
from functions.providers.catalog import Catalog, Mode, ModelSpec, load_catalog

MAX_FALLBACK_MODELS = 3
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
CAMERA_TYPES = ("simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward")


class ValidationContext(TypedDict, total=False):
    catalog: Catalog
    resolve: Resolver
    trusted: bool
    """Set by our own code re-reading a stored request: allows images by S3 key (uploaded and checked by us), and
    resolves no URL again. They were checked when the request was accepted and are checked again where they
    are used (an image URL just before we download it, the callback URL at delivery): a DNS hiccup of the
    user's webhook host must not fail a job the provider is already rendering."""


class CameraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    horizontal: float | None = Field(default=None, ge=-10, le=10)
    vertical: float | None = Field(default=None, ge=-10, le=10)
    pan: float | None = Field(default=None, ge=-10, le=10)
    tilt: float | None = Field(default=None, ge=-10, le=10)
    roll: float | None = Field(default=None, ge=-10, le=10)
    zoom: float | None = Field(default=None, ge=-10, le=10)


class CameraControl(BaseModel):
    """Kling's camera movement: a preset type, or ``simple`` with exactly one non-zero axis in ``config``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward"]
    config: CameraConfig | None = None

    @model_validator(mode="after")
    def _config_matches_type(self) -> CameraControl:
        if self.type != "simple":
            if self.config is not None:
                raise ValueError(f"config is only allowed with type 'simple' (type is {self.type!r})")
            return self
        if self.config is None:
            raise ValueError("type 'simple' needs a config with exactly one non-zero axis")
        non_zero = [name for name, value in self.config.model_dump().items() if value]
        if len(non_zero) != 1:
            raise ValueError(
                "config must set exactly one of horizontal, vertical, pan, tilt, roll, zoom to a non-zero "
                f"value in -10..10 (non-zero now: {', '.join(non_zero) or 'none'})"
            )
        return self


class ImageInput(BaseModel):
    """An input image: an https URL the provider can fetch, or the image bytes themselves.

    Accepts a bare string (an https URL, a data URI or plain base64) or bytes as shorthand.
    """

    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    url: str | None = None
    data: bytes | None = Field(default=None, repr=False)
    s3_key: str | None = Field(default=None, description="Internal: an image we uploaded (and checked) to S3.")
    media_type: str | None = None
    filename: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            return {"data": bytes(value)}
        if isinstance(value, str):
            if "://" in value[:16]:
                return {"url": value}
            return _decoded(value, {})
        if isinstance(value, dict) and isinstance(value.get("data"), str):
            return _decoded(value["data"], value)
        return value

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ImageInput:
        if sum(source is not None for source in (self.url, self.data, self.s3_key)) != 1:
            raise ValueError("give exactly one of url (https) or data (the image bytes, base64 in JSON)")
        return self


def _decoded(text: str, rest: dict[str, Any]) -> dict[str, Any]:
    data, declared = decode_base64_image(text)  # ValueError becomes a field error
    return {**rest, "data": data, "media_type": rest.get("media_type") or declared}


class VideoRequest(BaseModel):
    """One video to generate. Unknown fields are rejected; defaults come from the model's catalog entry."""

    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    model: str = Field(description="A model id from the catalog, e.g. veo3-fast.")
    prompt: str = Field(description="What the video shows.")
    images: list[ImageInput] = Field(
        default_factory=list,
        description="0 images: text-to-video; 1: image-to-video; 2: first and last frame (where supported).",
    )
    seconds: int | None = Field(default=None, description="Duration; the model's default when omitted.")
    size: str | None = Field(default=None, description="WxH such as 1280x720, or the model's own format name.")
    aspect_ratio: str | None = Field(default=None, description="Alternative to size, e.g. 16:9.")
    negative_prompt: str | None = None
    cfg_scale: float | None = Field(default=None, ge=0, le=1)
    camera_control: CameraControl | None = None
    mode: Literal["std", "pro"] | None = None
    seed: int | None = Field(default=None, ge=0, le=4_294_967_295)
    callback_url: str | None = None
    metadata: dict[str, str] | None = None
    fallback_models: list[str] = Field(default_factory=list)
    poll_interval_seconds: int | None = Field(default=None, ge=1, le=600)
    max_wait_seconds: int | None = Field(default=None, ge=30, le=6 * 3600)

    @model_validator(mode="before")
    @classmethod
    def _single_image_alias(cls, value: Any) -> Any:
        """``image`` (one) is accepted as shorthand for ``images`` (a list)."""
        if isinstance(value, dict) and "image" in value:
            if "images" in value:
                raise InvalidRequestError("image: give either image or images, not both", param="image")
            value = dict(value)
            single = value.pop("image")
            value["images"] = [] if single is None else [single]
        return value

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} keys (got {len(value)})")
        for key, item in value.items():
            if not key or len(key) > MAX_METADATA_KEY_CHARS:
                raise ValueError(f"key {key[:80]!r} must be 1 to {MAX_METADATA_KEY_CHARS} characters")
            if len(item) > MAX_METADATA_VALUE_CHARS:
                raise ValueError(f"value of {key!r} is longer than {MAX_METADATA_VALUE_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _against_catalog(self, info: ValidationInfo) -> VideoRequest:
        context = cast(ValidationContext, info.context or {})
        catalog = context.get("catalog") or load_catalog()
        resolve = context.get("resolve") or resolve_host
        spec = _known_model(catalog, self.model, "model")
        self._check_prompt(spec)
        inspected = self._check_mode_and_images(spec, resolve, trusted=context.get("trusted", False))
        self._check_seconds_and_format(spec, inspected)
        self._check_options(spec)
        if self.callback_url is not None and not context.get("trusted", False):
            check_public_https_url(self.callback_url, field="callback_url", resolve=resolve)
        self._check_fallbacks(catalog, {**context, "catalog": catalog, "resolve": resolve})
        return self

    # --- the checks, in the order a user would fix them ---------------------------------------------------

    def _check_prompt(self, spec: ModelSpec) -> None:
        self.prompt = self.prompt.strip()
        if not self.prompt:
            raise InvalidRequestError("prompt: must not be blank", param="prompt")
        if len(self.prompt) > spec.prompt_max_chars:
            raise InvalidRequestError(
                f"prompt: {len(self.prompt)} characters is too long for {spec.id}; "
                f"allowed: at most {spec.prompt_max_chars}",
                param="prompt",
            )

    @property
    def input_mode(self) -> Mode:
        return (Mode.TEXT, Mode.IMAGE, Mode.FIRST_LAST)[min(len(self.images), 2)]

    def _check_mode_and_images(self, spec: ModelSpec, resolve: Resolver, *, trusted: bool) -> list[ImageInfo | None]:
        """Checks the images; returns what each byte image turned out to be (None for a URL or S3 key)."""
        if len(self.images) > 2:
            raise InvalidRequestError(
                f"images: at most 2 images (first and last frame) (got {len(self.images)})", param="images"
            )
        if not spec.supports(self.input_mode):
            raise InvalidRequestError(f"images: {_mode_message(spec, self.input_mode)}", param="images")
        inspected: list[ImageInfo | None] = []
        for index, image in enumerate(self.images):
            field = f"images[{index}]"
            if image.url is not None:
                if not trusted:
                    check_public_https_url(image.url, field=f"{field}.url", resolve=resolve)
                inspected.append(None)
                continue
            if image.s3_key is not None:
                if not trusted:
                    raise InvalidRequestError(
                        f"{field}.s3_key: not accepted in a request; give an https URL or the image itself",
                        param=f"{field}.s3_key",
                    )
                inspected.append(None)
                continue
            assert image.data is not None
            if len(image.data) > min(spec.images.max_bytes, MAX_IMAGE_BYTES):
                raise InvalidRequestError(
                    f"{field}: {len(image.data)} bytes is too large for {spec.id}; allowed: at most "
                    f"{min(spec.images.max_bytes, MAX_IMAGE_BYTES)} bytes",
                    param=field,
                )
            try:
                found = inspect_image(image.data)
            except ValueError as exc:
                raise InvalidRequestError(f"{field}: {exc}", param=field) from exc
            if found.kind not in spec.images.formats:
                raise InvalidRequestError(
                    f"{field}: {found.kind.upper()} is not accepted by {spec.id}; allowed: "
                    f"{', '.join(k.upper() for k in spec.images.formats)}",
                    param=field,
                )
            if min(found.width, found.height) < spec.images.min_side:
                raise InvalidRequestError(
                    f"{field}: {found.width}x{found.height} is too small for {spec.id}; allowed: at least "
                    f"{spec.images.min_side}x{spec.images.min_side}",
                    param=field,
                )
            image.media_type = found.media_type
            inspected.append(found)
        return inspected

    def _check_seconds_and_format(self, spec: ModelSpec, inspected: list[ImageInfo | None]) -> None:
        if self.seconds is None:
            self.seconds = spec.seconds.default
        elif self.seconds not in spec.seconds.allowed:
            raise InvalidRequestError(
                f"seconds: {self.seconds} is not allowed for {spec.id}; allowed: "
                f"{', '.join(map(str, spec.seconds.allowed))}",
                param="seconds",
            )
        allowed_sizes = ", ".join(f.size for f in spec.formats)
        chosen = spec.default_format
        if self.size is not None:
            found = spec.format_for(self.size)
            if found is None:
                raise InvalidRequestError(
                    f"size: {self.size} is not allowed for {spec.id}; allowed: {allowed_sizes}", param="size"
                )
            chosen = found
        if self.aspect_ratio is not None:
            by_ratio = spec.format_for(self.aspect_ratio)
            if by_ratio is None:
                ratios = ", ".join(sorted({a for f in spec.formats for a in f.accepts if ":" in a}))
                raise InvalidRequestError(
                    f"aspect_ratio: {self.aspect_ratio} is not allowed for {spec.id}; allowed: {ratios}",
                    param="aspect_ratio",
                )
            if self.size is not None and by_ratio != chosen:
                raise InvalidRequestError(
                    f"aspect_ratio: {self.aspect_ratio} contradicts size {self.size}; give one of them",
                    param="aspect_ratio",
                )
            chosen = by_ratio
        self.size = chosen.size
        if spec.images.must_match_size:
            for index, image_info in enumerate(inspected):
                if image_info is not None and (image_info.width, image_info.height) != (
                    chosen.width,
                    chosen.height,
                ):
                    raise InvalidRequestError(
                        f"images[{index}]: {image_info.width}x{image_info.height} does not match size {chosen.size}; "
                        f"{spec.id} needs the reference image to have the video's exact size",
                        param=f"images[{index}]",
                    )

    def _check_options(self, spec: ModelSpec) -> None:
        given = {
            "negative_prompt": self.negative_prompt,
            "cfg_scale": self.cfg_scale,
            "camera_control": self.camera_control,
            "mode": self.mode,
            "seed": self.seed,
        }
        for name, value in given.items():
            if value is not None and name not in spec.options:
                supported = ", ".join(spec.options) or "none"
                raise InvalidRequestError(
                    f"{name}: not supported by {spec.id}; options it supports: {supported}", param=name
                )
        if self.negative_prompt is not None and spec.negative_prompt_max_chars is not None:
            self.negative_prompt = self.negative_prompt.strip() or None
            if self.negative_prompt and len(self.negative_prompt) > spec.negative_prompt_max_chars:
                raise InvalidRequestError(
                    f"negative_prompt: {len(self.negative_prompt)} characters is too long for {spec.id}; "
                    f"allowed: at most {spec.negative_prompt_max_chars}",
                    param="negative_prompt",
                )
        if "mode" in spec.options and self.mode is None:
            self.mode = spec.default_mode

    def _check_fallbacks(self, catalog: Catalog, context: ValidationContext) -> None:
        """Each fallback must be able to take this request as for_fallback() adapts it: checked now, so a
        fallback never fails at the provider for a reason we could have seen."""
        if len(self.fallback_models) > MAX_FALLBACK_MODELS:
            raise InvalidRequestError(
                f"fallback_models: at most {MAX_FALLBACK_MODELS} (got {len(self.fallback_models)})",
                param="fallback_models",
            )
        seen = {self.model}
        for index, model_id in enumerate(self.fallback_models):
            field = f"fallback_models[{index}]"
            spec = _known_model(catalog, model_id, field)
            if model_id in seen:
                raise InvalidRequestError(f"{field}: {model_id} is listed twice (or is the main model)", param=field)
            seen.add(model_id)
            if not spec.supports(self.input_mode):
                raise InvalidRequestError(f"{field}: {_mode_message(spec, self.input_mode)}", param=field)
            adapted = self.for_fallback(spec).model_dump(exclude_none=True)
            try:
                VideoRequest.model_validate(adapted, context=context)
            except InvalidRequestError as exc:
                raise InvalidRequestError(
                    f"{field}: {model_id} cannot take this request: {exc.message}", param=field
                ) from exc

    # --- derived views --------------------------------------------------------------------------------

    def for_fallback(self, spec: ModelSpec) -> VideoRequest:
        """This request adapted to a fallback model: nearest allowed duration, same format where it exists,
        options the fallback does not take dropped. Validation already checked the fallback takes the mode."""
        requested = self.seconds or spec.seconds.default
        seconds = min(spec.seconds.allowed, key=lambda s: (abs(s - requested), -s))
        same_format = spec.format_for(self.size) if self.size else None
        options = {
            name: getattr(self, name) if name in spec.options else None
            for name in ("negative_prompt", "cfg_scale", "camera_control", "mode", "seed")
        }
        if "mode" in spec.options and options["mode"] is None:
            options["mode"] = spec.default_mode
        return self.model_copy(
            update={
                "model": spec.id,
                "seconds": seconds,
                "size": (same_format or spec.default_format).size,
                "aspect_ratio": None,
                "fallback_models": [],
                **options,
            }
        )


def _known_model(catalog: Catalog, model_id: str, field: str) -> ModelSpec:
    spec = catalog.get(model_id)
    if spec is None:
        raise InvalidRequestError(
            f"{field}: unknown model {model_id!r}; allowed: {', '.join(catalog.ids())}", param=field
        )
    return spec


def _mode_message(spec: ModelSpec, mode: Mode) -> str:
    needs = {
        Mode.TEXT: "text-to-video (no image)",
        Mode.IMAGE: "image-to-video (one image)",
        Mode.FIRST_LAST: "first-and-last-frame video (two images)",
    }
    allowed = "; ".join(needs[m] for m in spec.modes)
    if mode is Mode.TEXT and Mode.TEXT not in spec.modes:
        return f"{spec.id} generates from an image only: give an image; allowed: {allowed}"
    return f"{spec.id} does not do {needs[mode]}; allowed: {allowed}"


def parse_video_request(
    data: Mapping[str, Any] | str | bytes,
    *,
    catalog: Catalog | None = None,
    resolve: Resolver | None = None,
    trusted: bool = False,
) -> VideoRequest:
    """Validate a request from a dict or JSON text; every problem becomes one InvalidRequestError."""
    context: ValidationContext = {"trusted": trusted}
    if catalog is not None:
        context["catalog"] = catalog
    if resolve is not None:
        context["resolve"] = resolve
    try:
        if isinstance(data, str | bytes):
            return VideoRequest.model_validate_json(data, context=context)
        return VideoRequest.model_validate(dict(data), context=context)
    except ValidationError as exc:
        raise invalid_request_from(exc, allowed_fields=list(VideoRequest.model_fields)) from None


def invalid_request_from(exc: ValidationError, *, allowed_fields: list[str]) -> InvalidRequestError:
    """pydantic's first error as our error: the field path, what was wrong, and what is allowed."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    param = _field_path(first["loc"]) or None
    kind = first["type"]
    if kind == "extra_forbidden":
        reason = (
            f"unknown field; allowed fields: {', '.join(_fields_at(VideoRequest, first['loc'][:-1]) or allowed_fields)}"
        )
    elif kind == "missing":
        reason = "is required"
    elif kind == "json_invalid":
        reason = f"the body is not valid JSON ({first['msg']})"
    else:
        message = str(first["msg"]).removeprefix("Value error, ")
        shown = first.get("input")
        given = ""
        if isinstance(shown, str):
            given = f" (got {shown[:60]!r})"
        elif isinstance(shown, int | float | bool):
            given = f" (got {shown})"
        reason = f"{message}{given}"
    text = f"{param}: {reason}" if param else reason
    return InvalidRequestError(
        text, param=param, details={"errors": [{"loc": list(e["loc"]), "type": e["type"]} for e in errors]}
    )


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the (nested) model at ``loc``, e.g. camera_control.config -> CameraConfig's."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        nested = _model_in(field.annotation) if field is not None else None
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not path:
            path = str(part)
        else:
            path += f".{part}"
    return path
