"""A brand-new video as the product sees it (clip and/or cover, title, author statistics), checked and
turned into a one-row :class:`~vidpop.data.schema.VideoDataset` so every model reads it through the
same feature extractors it was trained with."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".flv", ".ts"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})
#: a title longer than this is not a title (the text encoders read ~128 tokens anyway)
MAX_TITLE_CHARS = 1000
#: decoding a cover bigger than this many pixels is refused (PIL's own bomb guard is a warning at 89 MP)
MAX_IMAGE_PIXELS = 40_000_000


def check_image(path: Path) -> None:
    """Decode the whole image; a file that is not one gets "cover.jpg is not an image"."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise VidpopError(f"{path.name} is too large an image ({im.width}x{im.height} pixels)")
            im.load()  # a full decode: a truncated file fails here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        why = "" if isinstance(exc, UnidentifiedImageError) else f" ({str(exc)[:100]})"
        raise VidpopError(f"{path.name} is not an image{why}") from exc


def check_video(path: Path) -> None:
    """A video stream with at least one frame that decodes; else "clip.mp4 has no decodable video frames"."""
    from vidpop.features.video import VideoDecodeError, check_decodable

    try:
        check_decodable(path)
    except VideoDecodeError as exc:
        msg = str(exc)  # the probe's own messages name the file, never its folder
        raise VidpopError(msg if msg.startswith(path.name) else f"{path.name} has no decodable video frames") from exc


@dataclass
class NewVideo:
    """What a creator has before publishing: any of a clip, a cover and a title, optionally follower count."""

    video: Path | None = None
    cover: Path | None = None
    title: str = ""
    author_followers: float | None = None
    #: optional facts a creator knows before posting (models trained on data that has them read them):
    #: hashtags ("#cat #funny" or "cat, funny"), the clip's duration in seconds, the planned posting time (ISO)
    tags: str = ""
    duration: float | None = None
    posted_at: str | None = None
    #: set by :meth:`check`, so the API's early check and the bundle's do not decode the files twice
    checked: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.video = Path(self.video) if self.video else None
        self.cover = Path(self.cover) if self.cover else None
        self.title = (self.title or "").strip()

    def check(self, max_title_chars: int = MAX_TITLE_CHARS) -> NewVideo:
        """Raise a one-line :class:`VidpopError` for input no model can use; the files are decoded here
        (the image whole, the clip up to its first frame), before any model sees them."""
        if self.checked:
            return self
        if self.video is None and self.cover is None and not self.title:
            raise VidpopError("give a video, a cover or a title")
        if len(self.title) > max_title_chars:
            raise VidpopError(f"the title has {len(self.title)} characters; the limit is {max_title_chars}")
        for what, path, allowed in (("video", self.video, VIDEO_SUFFIXES), ("cover", self.cover, IMAGE_SUFFIXES)):
            if path is None:
                continue
            if not path.is_file():
                raise VidpopError(f"{what} file not found: {path}")
            if path.stat().st_size == 0:
                raise VidpopError(f"{what} file is empty: {path.name}")
            if path.suffix.lower() not in allowed:
                raise VidpopError(f"{what} must be one of {', '.join(sorted(allowed))}; got '{path.suffix}'")
        if self.cover is not None:
            check_image(self.cover)
        if self.video is not None:
            check_video(self.video)
        if self.author_followers is not None:
            f = float(self.author_followers)
            if not math.isfinite(f) or f < 0:
                raise VidpopError(f"author followers must be a non-negative number, got {self.author_followers}")
        if self.duration is not None:
            d = float(self.duration)
            if not math.isfinite(d) or d < 0:
                raise VidpopError(f"the duration must be a non-negative number of seconds, got {self.duration}")
        if self.posted_at:
            try:
                pd.Timestamp(self.posted_at)
            except ValueError:
                raise VidpopError(f"the posting time must be an ISO date/time, got '{self.posted_at[:40]}'") from None
        self.checked = True
        return self

    @property
    def video_id(self) -> str:
        """A content hash: the same inputs map to the same id (and cached features), different ones never collide."""
        h = hashlib.sha1(self.title.encode("utf-8"))
        h.update(f"|{self.tags}|{self.duration}|{self.posted_at}".encode())
        for path in (self.video, self.cover):
            h.update(b"|")
            if path is not None:
                with open(path, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
        return "new-" + h.hexdigest()[:16]

    def dataset(self) -> VideoDataset:
        """The video as a one-row dataset (author stats as a one-row authors table when given)."""
        row = {
            "video_id": self.video_id,
            "title": self.title or None,
            "video_path": str(self.video.resolve()) if self.video else None,
            "cover_path": str(self.cover.resolve()) if self.cover else None,
        }
        tags = [t.strip().lstrip("#").strip() for t in re.split(r"[,#\s]+", self.tags or "")]
        if any(tags):
            row["tags"] = "|".join(t for t in tags if t)
        if self.duration is not None:
            row["duration"] = float(self.duration)
        if self.posted_at:
            t = pd.Timestamp(self.posted_at)
            row["published_at"] = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
        authors = None
        if self.author_followers is not None:
            row["author_id"] = "new-author"
            authors = pd.DataFrame({"author_id": ["new-author"], "followers": [float(self.author_followers)]})
        videos = pd.DataFrame([row])
        if authors is None:
            return VideoDataset("new-videos", videos)
        return VideoDataset("new-videos", videos, authors)

    def describe(self) -> dict[str, object]:
        return {
            "video": self.video.name if self.video else None,
            "cover": self.cover.name if self.cover else None,
            "title": self.title,
            "author_followers": self.author_followers,
            "tags": self.tags or None,
            "duration": self.duration,
            "posted_at": self.posted_at,
        }
