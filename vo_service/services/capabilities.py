"""The TAP capabilities document, from the settings, the ADQL features and the formats."""

from __future__ import annotations

from vo_service.adql.features import LANGUAGE_FEATURES
from vo_service.serialize.formats import SUPPORTED_FORMATS
from vo_service.serialize.vosi import LanguageFeature, OutputFormatDescription, TapLimits
from vo_service.serialize.vosi import tap_capabilities as build
from vo_service.settings import Settings


def _features() -> list[LanguageFeature]:
    return [LanguageFeature(f.type, f.form, f.description) for f in LANGUAGE_FEATURES]


def _formats() -> list[OutputFormatDescription]:
    return [OutputFormatDescription(f.mime_type, f.ivo_id, tuple(f.aliases))
            for f in SUPPORTED_FORMATS]


def tap_capabilities(settings: Settings) -> bytes:
    """Built once per process: nothing in it changes while the service runs."""
    s = settings
    limits = TapLimits(
        retention_default_s=s.uws.default_destruction_days * 86400,
        retention_hard_s=s.uws.hard_destruction_days * 86400,
        execution_default_s=s.uws.default_execution_duration_s,
        execution_hard_s=s.uws.hard_execution_duration_s,
        output_default_rows=s.tap.default_maxrec,
        output_hard_rows=s.tap.hard_maxrec,
        upload_default_bytes=s.tap.upload_limit_bytes,
        upload_hard_bytes=s.tap.upload_limit_bytes,
    )
    return build(f"{s.service.base_url.rstrip('/')}/tap", _features(), _formats(), limits)
