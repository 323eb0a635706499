"""A user's image file -> the 28x28 field the network reads (`mnist_cnn predict`).

`load_ink` reads the file with Pillow inside its limits and turns it into ink in [0, 1]:
`read_image` refuses what is not one still picture (missing, a folder, empty, not an image,
truncated, over Pillow's decompression-bomb limit, an animated GIF/WebP/PNG), `ink_of` decides the
polarity (dark ink on light paper, or light on dark) from the colour of the image's border, which
is paper in any photo or scan of one digit, stretches the contrast so that paper is 0 and the
strongest ink 1, and clears specks below a noise threshold. `to_field` then calls
`mnist_cnn.preprocess.to_mnist_field` (the one definition the draw page ports) on that ink.

Everything here is Pillow and NumPy, no TensorFlow: the command line checks every image before
TensorFlow is imported, so bad input costs nothing and writes nothing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cnn.errors import UserError
from mnist_cnn.preprocess import to_mnist_field

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")  # what Pillow may open (Image.open(formats=))
NOISE_THRESHOLD = 0.2   # ink below this fraction of the strongest ink is treated as paper
MIN_CONTRAST = 0.1      # ink must differ from paper by this much (of the full 0-1 range)


@dataclass(frozen=True)
class Ink:
    """An image read and turned into ink: `ink` (H, W) in [0, 1], and how it was read."""
    ink: np.ndarray
    size: tuple          # (width, height) as given
    mode: str            # Pillow's mode of the file ("RGB", "LA", "P", ...)
    format: str          # "PNG", "JPEG", ...
    polarity: str        # "dark ink on light paper", "light ink on dark paper", "opaque ink (alpha)"
    paper: float         # grey level of the paper (0 black, 1 white)
    preview: object = None  # the image as given, fitted for a report (`thumbnail`)


def read_image(path):
    """Open `path` with Pillow, fully decoded, as one still image.

    Raises
    ------
    UserError
        One line saying what is wrong: no such file, a folder, an empty file, not an image in
        one of FORMATS, a truncated or corrupt file, more pixels than Pillow's
        decompression-bomb limit (Image.MAX_IMAGE_PIXELS), or an animated image (several
        frames: which one is the digit is not ours to guess; save the frame you mean alone).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise UserError(f"no such image: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give image files (PNG, JPEG, BMP, GIF, WebP)")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes); give an image file")
    with warnings.catch_warnings():
        # Pillow warns between MAX_IMAGE_PIXELS and twice that, and raises above: refuse both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path, formats=FORMATS) as image:
                frames = getattr(image, "n_frames", 1)
                if frames > 1:
                    raise UserError(f"{path} is an animated {image.format} with {frames} frames; "
                                    "only its first frame would be used, so it is refused: save "
                                    "that frame as a still image")
                image.load()  # decode now: a truncated file fails here, not later
                fmt = image.format
                # a phone photo is stored sideways with an EXIF orientation: turn it upright
                return ImageOps.exif_transpose(image), fmt
        except UserError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UserError(f"{path} has more pixels than the limit of "
                            f"{Image.MAX_IMAGE_PIXELS:,} (Pillow's decompression-bomb guard); "
                            "scale it down first") from None
        except UnidentifiedImageError:
            raise UserError(f"{path} is not an image Pillow can read as "
                            f"{', '.join(FORMATS)}") from None
        except (OSError, SyntaxError, ValueError) as e:  # truncated / corrupt data
            reason = str(e).strip().splitlines()[0][:100] if str(e).strip() else type(e).__name__
            raise UserError(f"{path} is damaged or truncated ({reason}); save it again") from None


def _grey_and_alpha(image):
    """(grey (H, W) in [0, 1], alpha (H, W) in [0, 1] or None) of any Pillow mode."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and
                                                        "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255.0
        grey = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.float64) / 255.0
        return grey, alpha
    if image.mode in ("I", "I;16", "F"):  # 16-bit / float greys: scale their own range
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I") and values.max() > 255 else 255.0
        return np.clip(values / top, 0, 1), None
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0, None


def ink_of(grey, alpha=None, threshold: float = NOISE_THRESHOLD):
    """Ink in [0, 1] from a grey image (and its alpha): (ink, polarity, paper level).

    Parameters
    ----------
    grey : array (H, W) in [0, 1].
    alpha : array (H, W) in [0, 1], optional. If some pixels are transparent, the opaque
        strokes are the ink (a drawing exported from a canvas): ink = alpha.
    threshold : float
        Ink below this fraction of the strongest ink becomes paper (specks, JPEG ringing,
        paper texture).

    Returns
    -------
    (ink (H, W) float64 in [0, 1], polarity str, paper grey level float)

    Raises
    ------
    UserError
        If nothing stands out from the paper by MIN_CONTRAST: a blank image.
    """
    grey = np.asarray(grey, dtype=np.float64)
    if alpha is not None and alpha.min() < 0.5 and alpha.max() > 0.5:
        raw, polarity, paper = np.asarray(alpha, dtype=np.float64), "opaque ink (alpha)", 0.0
    else:
        border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
        paper = float(np.median(border))
        if paper >= 0.5:
            raw, polarity = paper - grey, "dark ink on light paper"
        else:
            raw, polarity = grey - paper, "light ink on dark paper"
    raw = np.clip(raw, 0.0, None)
    peak = float(raw.max())
    if peak < MIN_CONTRAST:
        raise UserError("the image is blank: nothing stands out from the paper "
                        f"(strongest ink {peak:.2f} of the 0-1 range; at least {MIN_CONTRAST} needed)")
    ink = raw / peak
    ink[ink < threshold] = 0.0
    return ink, polarity, paper


def load_ink(path, threshold: float = NOISE_THRESHOLD) -> Ink:
    """Read an image file and return its ink (see `read_image`, `ink_of`)."""
    image, fmt = read_image(path)
    grey, alpha = _grey_and_alpha(image)
    try:
        ink, polarity, paper = ink_of(grey, alpha, threshold)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return Ink(ink=ink, size=image.size, mode=image.mode, format=fmt, polarity=polarity,
               paper=paper, preview=thumbnail(image))


def to_field(ink: Ink) -> np.ndarray:
    """The 28x28 float32 field in [0, 1] the network reads (`preprocess.to_mnist_field`)."""
    return to_mnist_field(ink.ink, threshold=0.0)


def thumbnail(image, side: int = 280):
    """A Pillow image (as `read_image` gives it) fitted into side x side for a report, RGB."""
    from PIL import Image

    image = image.convert("RGBA")
    image.thumbnail((side, side))
    flat = Image.new("RGB", image.size, (128, 128, 128))  # transparency shown as mid grey
    flat.paste(image, mask=image.getchannel("A"))
    return flat
